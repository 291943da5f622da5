"""How the BigQuery engine and the GCS store classify what Google answers, with the official
clients talking HTTP to a loopback server that answers like the service does when it refuses
(403), cannot find (404), is overloaded (503) or hangs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from mlrelay.adapters.gcs_store import GcsStore
from mlrelay.config.snapshot import SnapshotSettings
from mlrelay.errors import ConfigurationError, PermanentError, TransientError
from mlrelay.ports.protocols import SnapshotPlan
from mlrelay_snapshotter.bigquery_warehouse import BigQueryWarehouse
from mlrelay_snapshotter.warehouses import bigquery_client
from tests.fakes.server import Answer as Reply
from tests.fakes.server import LoopbackServer, Request, json_answer


class Answer:
    status = 200
    reason = ""
    message = ""
    delay = 0.0
    requests = 0


def serve(answer: Answer) -> Iterator[str]:
    def respond(request: Request) -> Reply:
        answer.requests += 1
        if answer.delay:
            time.sleep(answer.delay)
        error = {
            "code": answer.status,
            "message": answer.message or f"answered {answer.status}",
            "errors": [{"reason": answer.reason, "message": "x"}],
        }
        return json_answer(answer.status, {"error": error})

    with LoopbackServer(respond) as server:
        yield server.url


@pytest.fixture
def answer() -> Answer:
    return Answer()


@pytest.fixture
def endpoint(answer: Answer) -> Iterator[str]:
    yield from serve(answer)


def warehouse(endpoint: str) -> BigQueryWarehouse:
    config = SnapshotSettings(bigquery_endpoint=endpoint, api_retry_seconds=2, job_wait_seconds=5)
    return BigQueryWarehouse(bigquery_client("proj", config), None, config)


def gcs_store(endpoint: str) -> GcsStore:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(
        project="proj",
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options={"api_endpoint": endpoint},
    )
    return GcsStore("bucket", "proj", client=client, retry_seconds=2)


PLAN = SnapshotPlan(
    "table",
    "shop.orders",
    None,
    {},
    "snapshots/o/r/",
    "mlrelay-r",
    datetime(2026, 1, 1, tzinfo=UTC),
)


@pytest.mark.parametrize(
    ("status", "reason", "field"),
    [
        (403, "accessDenied", "MLRELAY_BIGQUERY_STAGING_DATASET"),
        (404, "notFound", "MLRELAY_BIGQUERY_STAGING_DATASET"),
    ],
)
def test_bigquery_refusing_our_own_set_up_is_a_configuration_error(
    answer: Answer, endpoint: str, status: int, reason: str, field: str
) -> None:
    answer.status, answer.reason = status, reason
    with pytest.raises(ConfigurationError) as caught:  # redelivered until infra/ is fixed
        warehouse(endpoint).export_snapshot(PLAN, gcs_store(endpoint))
    assert caught.value.field == field
    assert answer.requests <= 2  # asked once (a 404 dataset is then created: refused again)


@pytest.mark.parametrize(("status", "reason"), [(503, "backendError"), (403, "rateLimitExceeded")])
def test_bigquery_overload_is_transient(
    answer: Answer, endpoint: str, status: int, reason: str
) -> None:
    answer.status, answer.reason = status, reason
    with pytest.raises(TransientError):
        warehouse(endpoint).export_snapshot(PLAN, gcs_store(endpoint))


def test_a_write_that_lost_a_race_with_a_concurrent_update_is_transient(
    answer: Answer, endpoint: str
) -> None:
    """BigQuery refuses a write that conflicts with another job on the table with a 400
    `invalidQuery`; unlike other invalid queries, retrying it is the remedy."""
    answer.status, answer.reason = 400, "invalidQuery"
    answer.message = "Could not serialize access to table p:d.t due to concurrent update"
    with pytest.raises(TransientError, match="concurrent update"):
        warehouse(endpoint).export_snapshot(PLAN, gcs_store(endpoint))
    answer.message = "Syntax error: Unexpected keyword FROM at [1:8]"
    with pytest.raises(PermanentError, match="Syntax error"):
        warehouse(endpoint).export_snapshot(PLAN, gcs_store(endpoint))


def test_a_bigquery_that_does_not_answer_is_transient(answer: Answer, endpoint: str) -> None:
    answer.status, answer.delay = 200, 10.0
    began = time.monotonic()
    with pytest.raises(TransientError):
        warehouse(endpoint).export_snapshot(PLAN, gcs_store(endpoint))
    assert time.monotonic() - began < 30


def test_gcs_refusal_is_a_configuration_error_and_overload_transient(
    answer: Answer, endpoint: str
) -> None:
    answer.status = 403
    with pytest.raises(ConfigurationError) as caught:
        gcs_store(endpoint).write("runs/r/x.json", b"{}")
    assert caught.value.field == "MLRELAY_BUCKET"
    answer.status = 503
    with pytest.raises(TransientError):
        gcs_store(endpoint).write("runs/r/x.json", b"{}")
