"""The reliability suite on the cloud-shaped harness (tests/reliability/harness/): every message
delivered three times through real Pub/Sub push subscriptions, transient 5xx from GCS, BigQuery,
Vertex AI and Slack, a service process killed and restarted, a poison message on each topic,
secrets and SQL. Figures are counted from real effects: manifests in the GCS emulator, jobs on
the loopback Vertex AI, Slack messages."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability.harness.cloud import SLACK_TOKEN, Harness, cloud_harness
from tests.reliability.harness.figures import count_figures
from tests.reliability.harness.runs import assert_exactly_once, finished, read_blob, request_run

SETTLE_SECONDS = int(os.environ.get("HARNESS_SETTLE_SECONDS", "240"))


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    with cloud_harness(
        tmp_path_factory.mktemp("harness"), pipelines=2, duplicates=3, max_attempts=5
    ) as h:
        h.bigquery.record = True
        yield h


def test_three_deliveries_and_transient_faults_give_one_snapshot_job_and_post_per_run(
    harness: Harness,
) -> None:
    harness.gcs.fail_next(503, 3, method="POST")
    harness.bigquery.fail_next(503, 2, path="/jobs")
    harness.vertex.fail_next(503, "backend unavailable", times=2)
    harness.slack.queue(500, "oops", times=1, path_prefix="/api/chat.postMessage")
    requested = {request_run(harness, f"harness-{i}"): f"harness-{i}" for i in range(2)}
    harness.wait_until(lambda: finished(harness, requested), SETTLE_SECONDS, "both runs")
    assert_exactly_once(harness, requested)
    figures = count_figures(harness, requested)
    assert figures.deliveries >= 3 * figures.messages_published // 2  # duplicates happened
    assert harness.gcs.pending_faults() == 0 and harness.bigquery.injected >= 2
    assert not harness.vertex.failures and not harness.slack.canned  # every fault was met


def test_a_killed_deployer_process_restarted_later_loses_no_run(harness: Harness) -> None:
    harness.kill_service("mlrelay-deployer")
    proxy = harness.services["mlrelay-deployer"].proxy
    refused_before = proxy.requests["502"]
    requested = {request_run(harness, "harness-0"): "harness-0"}
    harness.wait_until(
        lambda: proxy.requests["502"] > refused_before, SETTLE_SECONDS, "a refused push"
    )
    harness.start_service("mlrelay-deployer")
    harness.wait_until(lambda: finished(harness, requested), SETTLE_SECONDS, "the run")
    assert_exactly_once(harness, requested)
    assert harness.services["mlrelay-deployer"].starts == 2


@pytest.mark.parametrize(
    ("topic", "stage"),
    [("runs", "trigger"), ("snapshots", "snapshot"), ("deploys", "pipeline"),
     ("lifecycle", "notify")],
)  # fmt: skip
def test_a_poison_message_on_each_topic_becomes_one_kept_rejection_with_a_reason(
    harness: Harness, topic: str, stage: str
) -> None:
    marker = uuid.uuid4().hex
    data = json.dumps({"run_id": 7, "pipeline": "Not A Name", "poison": marker}).encode()
    message_id = harness.publish(getattr(harness.topics, topic), data, {"event_type": "garbage"})

    def rejected() -> list[object]:
        return [
            e
            for e in harness.events()
            if e.status == "rejected" and e.stage == stage
            and e.details.get("message_id") == message_id
        ]  # fmt: skip

    harness.wait_until(lambda: bool(rejected()), 60, f"the {stage} rejection")
    time.sleep(3)  # let the duplicate deliveries land too
    harness.drain()
    events = rejected()
    assert {e.error for e in events} and all(e.error for e in events)  # type: ignore[attr-defined]
    kept = [n for n in harness.blobs("rejected/") if marker.encode() in read_blob(harness, n)]
    assert len(kept) == 1  # three deliveries, one kept message


def test_no_secret_in_any_log_line_event_or_post_and_request_values_stay_out_of_sql(
    harness: Harness,
) -> None:
    marker = f"x' OR '1'='1' --{uuid.uuid4().hex[:6]}"
    requested = {request_run(harness, "harness-0", skip_island=marker): "harness-0"}
    harness.wait_until(lambda: finished(harness, requested), SETTLE_SECONDS, "the run")
    assert_exactly_once(harness, requested)
    queries = [json.loads(b) for b in harness.bigquery.bodies if b.startswith(b"{")]
    sql = [json.dumps(q.get("query") or q.get("configuration", {}).get("query", {}).get("query"))
           for q in queries]  # fmt: skip
    assert any("demo.penguins" in text for text in sql)  # we did see the SQL
    assert not any(marker in text for text in sql)
    assert any(marker in json.dumps(q) for q in queries)  # it went as a query parameter
    everything = [harness.logs(), *(m.data.decode(errors="replace") for t in
                  harness.topics.all() for m in harness.published(t)),
                  *(m.text + json.dumps(m.blocks) for m in harness.slack.messages)]  # fmt: skip
    assert harness.logs()  # the services did log
    for text in everything:
        assert SLACK_TOKEN not in text
        assert SLACK_TOKEN[-8:] not in text
    assert Path(harness.workdir).exists()
