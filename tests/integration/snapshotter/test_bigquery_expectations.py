"""The snapshot's expectations on the Google engine, against local-bigquery and fake-gcs-server:
one extra query job per snapshot on the staging table, every registry value in its
`queryParameters` (the request bodies the emulator received are checked through a recording
proxy), a failed `error` check a `snapshot.failed` with the exact observed value and no deploy
request, a pass recorded in the manifest, and a redelivery that starts no second job."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mlrelay.adapters.gcs_store import GcsStore
from mlrelay.contracts import SnapshotRequest
from mlrelay.ports.container import Ports
from mlrelay.stage.envelope import PubsubMessage
from mlrelay_snapshotter.snapshot import snapshot_for_run
from tests.fakes.fault_proxy import FaultProxy
from tests.helpers import RecordingPublisher
from tests.integration.google_backend import bigquery_client, google_ports, new_bucket
from tests.integration.peers import BigQueryPeer

REGISTRY = """
version: 1
pipelines:
  clean:
    source:
      sql: SELECT * FROM `quality.events` WHERE id < @limit
      query_parameters: [limit]
    parameters: {limit: 1000}
    overridable: [limit]
    template: penguins/penguins_pipeline.yaml
    expectations:
      - min_rows: 1
      - max_row_change_pct: 50
      - not_null: [id]
      - unique: [id]
      - accepted_values: {column: kind, values: [click, "view' OR 'x'='x"]}
        severity: warn
      - max_null_fraction: {column: kind, fraction: 0.25}
      - fresh_within: {column: seen_at, window: 6h}
  nulls:
    source: {sql: "SELECT * FROM `quality.events`"}
    template: penguins/penguins_pipeline.yaml
    expectations:
      - not_null: [kind]
  stale:
    source: {sql: "SELECT * FROM `quality.stale`"}
    template: penguins/penguins_pipeline.yaml
    expectations:
      - fresh_within: {column: seen_at, window: 24h}
  empty:
    source: {sql: "SELECT * FROM `quality.events` WHERE FALSE"}
    template: penguins/penguins_pipeline.yaml
    expectations:
      - min_rows: 1
      - not_null: [id]
"""
# 1000 events: the first 3 without a kind, then click/view; the newest 1 hour old
SEED = """
CREATE OR REPLACE TABLE quality.events AS
SELECT i AS id, IF(i < 3, NULL, IF(MOD(i, 2) = 0, 'click', 'view')) AS kind,
       TIMESTAMP_SUB(TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL 1 HOUR), INTERVAL i SECOND)
         AS seen_at
FROM UNNEST(GENERATE_ARRAY(0, 999)) AS i
"""
STALE = """
CREATE OR REPLACE TABLE quality.stale AS
SELECT 1 AS id, TIMESTAMP '2026-01-02 03:04:05+00' AS seen_at
UNION ALL SELECT 2, TIMESTAMP '2026-01-01 00:00:00+00'
"""


@pytest.fixture(scope="module")
def seeded(bq: BigQueryPeer) -> BigQueryPeer:
    client = bigquery_client(bq)
    client.create_dataset("quality", exists_ok=True)
    client.query(SEED).result()
    client.query(STALE).result()
    return bq


@pytest.fixture
def proxy(seeded: BigQueryPeer) -> Iterator[FaultProxy]:
    """Records every request body on its way to the emulator."""
    started = FaultProxy(
        seeded.endpoint.removeprefix("http://"), "bigquery", journal=[], journal_bodies=True
    ).start()
    yield started
    started.stop()


def ports_through(
    proxy: FaultProxy, bq: BigQueryPeer
) -> tuple[Ports, RecordingPublisher, GcsStore]:
    store = new_bucket("quality")
    ports, published = google_ports(bq, store, REGISTRY, bigquery_endpoint=proxy.url)
    return ports, published, store


def request(run_id: str, pipeline: str, at: datetime, **parameters: Any) -> SnapshotRequest:
    return SnapshotRequest(
        run_id=run_id,
        pipeline=pipeline,
        parameters=parameters,
        logical_time=at,
        trigger="schedule",
        accepted_at=at,
    )


def snapshot(ports: Ports, req: SnapshotRequest) -> None:
    snapshot_for_run(req, PubsubMessage(b""), ports)


def expectation_jobs(proxy: FaultProxy) -> list[dict[str, Any]]:
    """The query jobs the emulator was asked to start for the expectations."""
    found = []
    for entry in proxy.journal or []:
        if entry.method == "POST" and entry.target.split("?")[0].endswith("/jobs") and entry.body:
            job = json.loads(entry.body)
            if "expectations" in job.get("jobReference", {}).get("jobId", ""):
                found.append(job)
    return found


def manifest_of(store: GcsStore, dataset: str, run_id: str) -> dict[str, Any] | None:
    raw = store.read(f"snapshots/{dataset}/{run_id}/manifest.json")
    return json.loads(raw) if raw else None


def deploys(published: RecordingPublisher, run_id: str) -> list[Any]:
    return [m for m in published.messages if m[2]["event_type"] == "deploy_request"
            and m[2]["run_id"] == run_id]  # fmt: skip


def test_a_pass_records_the_quality_block_after_one_query_job_with_bound_values(
    seeded: BigQueryPeer, proxy: FaultProxy
) -> None:
    ports, published, store = ports_through(proxy, seeded)
    now = datetime.now(UTC)
    snapshot(ports, request("clean-001", "clean", now, limit=1000))

    assert published.types() == ["snapshot.started", "snapshot.completed"]
    done = published.events()[-1]
    manifest = manifest_of(store, "clean", "clean-001")
    assert manifest is not None and manifest["quality"] == done.details["quality"]
    observed = {q["name"]: (q["passed"], q["observed"]) for q in manifest["quality"]}
    assert observed["min_rows(1)"] == (True, 1000)
    assert observed["max_row_change_pct(50)"] == (True, None)  # no previous snapshot
    assert observed["not_null(id)"] == (True, 0)
    assert observed["unique(id)"] == (True, 0)
    assert observed["accepted_values(kind)"] == (False, 499)  # the views: a warning
    assert observed["max_null_fraction(kind, 0.25)"] == (True, 0.003)
    assert observed["fresh_within(seen_at, 6h)"][0] is True
    assert done.details["quality_warnings"] == [
        "accepted_values(kind): 499 rows outside the accepted values (e.g. 'view')"
    ]
    assert len(deploys(published, "clean-001")) == 1

    [job] = expectation_jobs(proxy)
    assert job["jobReference"]["jobId"] == "mlrelay-clean-001-expectations-1"
    query = job["configuration"]["query"]
    sql = query["query"]
    assert "FROM `mlrelay-test.mlrelay_staging.clean_001`" in sql  # the staging table read
    for value in ("click", "view' OR 'x'='x", "0.25", "6h", "1000"):
        assert value not in sql
    bound = {p["name"]: p["parameterValue"]["value"] for p in query["queryParameters"]}
    assert bound == {"e4_value_0": "click", "e4_value_1": "view' OR 'x'='x"}
    assert {p["parameterType"]["type"] for p in query["queryParameters"]} == {"STRING"}

    # redelivered with its ledger record lost: the manifest's quality is reused, no new job
    store.delete("runs/clean-001/snapshot.json")
    snapshot(ports, request("clean-001", "clean", now, limit=1000))
    assert published.events()[-1].details["quality"] == manifest["quality"]
    assert len(expectation_jobs(proxy)) == 1
    names = [j.job_id for j in bigquery_client(seeded).list_jobs() if "clean-001" in j.job_id]
    assert sorted(names) == [
        "mlrelay-clean-001-expectations-1",
        "mlrelay-clean-001-extract-1",
        "mlrelay-clean-001-query-1",
    ]

    # a 90 % drop against that snapshot: failed, naming the exact change, nothing deployed
    time.sleep(1.1)
    snapshot(ports, request("clean-002", "clean", datetime.now(UTC), limit=100))
    failed = published.events()[-1]
    assert failed.event_type == "snapshot.failed"
    assert failed.details["field"] == "expectations[1]"
    assert "100 rows vs 1000 in the previous snapshot (-90%)" in (failed.error or "")
    assert failed.details["quality"][1]["observed"] == -90.0
    assert deploys(published, "clean-002") == []
    assert manifest_of(store, "clean", "clean-002") is None
    latest = json.loads(store.read("snapshots/clean/latest.json") or b"{}")
    assert latest["run_id"] == "clean-001"
    assert len(expectation_jobs(proxy)) == 2  # one per snapshot


@pytest.mark.parametrize(
    ("pipeline", "field", "text", "observed"),
    [
        ("nulls", "expectations[0]", "not_null(kind): 3 null(s) in kind", 3),
        (
            "stale",
            "expectations[0]",
            "newest seen_at is 2026-01-02T03:04:05+00:00",
            "2026-01-02T03:04:05+00:00",
        ),
        ("empty", "expectations[0]", "min_rows(1): 0 rows (fewer than 1)", 0),
    ],
)
def test_bad_data_is_a_failed_snapshot_naming_the_observed_value(
    seeded: BigQueryPeer, proxy: FaultProxy, pipeline: str, field: str, text: str, observed: Any
) -> None:
    ports, published, store = ports_through(proxy, seeded)
    run_id = f"{pipeline}-001"
    at = datetime.now(UTC) - timedelta(seconds=1)
    snapshot(ports, request(run_id, pipeline, at))
    assert published.types() == ["snapshot.started", "snapshot.failed"]
    failed = published.events()[-1]
    assert failed.details["field"] == field
    assert text in (failed.error or "")
    assert failed.details["quality"][0]["observed"] == observed
    assert deploys(published, run_id) == []
    assert manifest_of(store, pipeline, run_id) is None
    assert store.read(f"snapshots/{pipeline}/latest.json") is None
    assert len(expectation_jobs(proxy)) == 1

    snapshot(ports, request(run_id, pipeline, at))  # redelivered: the ledger's failure, again
    assert published.events()[-1].details["quality"] == failed.details["quality"]
    assert len(expectation_jobs(proxy)) == 1
