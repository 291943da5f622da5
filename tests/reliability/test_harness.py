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
from tests.reliability.harness.runs import (
    assert_exactly_once,
    finished,
    read_blob,
    request_run,
    run_ids_of,
)

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


def test_a_failed_run_retried_by_a_signed_click_runs_once_more_to_success_in_its_thread(
    harness: Harness, tmp_path: Path
) -> None:
    """A run whose pipeline job fails; a signed Retry click posted to the real interactions app
    (functions-framework, served in this process with the GCS and Pub/Sub emulators); the
    command reaches the attempts function three times (three subscriptions); one attempt runs
    to success, its messages in the original's thread, and the original's card says retried."""
    from types import SimpleNamespace
    from typing import Any

    from mlrelay.config.env import Secret
    from mlrelay.config.interactions import InteractionSettings
    from mlrelay.config.settings import Settings
    from mlrelay.kfp_components.completion import report_pipeline_completion
    from mlrelay.ports.container import Ports, use_ports
    from mlrelay.registry import ActionsSpec, load_registry
    from tests.helpers import SLACK_USER, button_body, http_function_client, signed_headers
    from tests.reliability.harness.cloud import BUCKET, CHANNEL, PROJECT

    harness.complete_jobs = False  # this run's job fails: its exit handler says so below
    try:
        requested = {request_run(harness, "harness-0"): "harness-0"}
        harness.wait_until(lambda: bool(run_ids_of(harness, requested)), 60, "the run")
        [original] = run_ids_of(harness, requested)
        harness.wait_until(
            lambda: any(v["run_id"] == original for v in harness.pipeline_jobs().values()),
            SETTLE_SECONDS,
            "its pipeline job",
        )
        for name, values in harness.pipeline_jobs().items():
            if values["run_id"] == original:
                status = SimpleNamespace(
                    state="FAILED",
                    error_message="The DAG failed because some tasks failed. The failed "
                    "tasks are: [train-model].",
                    pipeline_job_resource_name=name,
                )
                report_pipeline_completion(
                    status=status,
                    run_id=original,
                    pipeline="harness-0",
                    destination=values["mlrelay_lifecycle_destination"],
                )
                harness.completed_jobs.add(name)
    finally:
        harness.complete_jobs = True

    def original_card() -> Any:
        found = [
            m
            for m in harness.slack.channel_messages(CHANNEL)
            if m.thread_ts is None and original in m.text
        ]
        return found[0] if len(found) == 1 else None

    def card_failed() -> bool:
        card = original_card()
        return card is not None and card.blocks[0]["text"]["text"].endswith("harness-0: failed")

    harness.wait_until(card_failed, SETTLE_SECONDS, "the failure on the card")
    card = original_card()

    secret = "5e" * 16
    registry = load_registry(harness.workdir / "registry.yaml")
    spec = registry.pipelines["harness-0"]
    allowed = spec.model_copy(update={"actions": ActionsSpec(allowed_users=[SLACK_USER])})
    registry = registry.model_copy(
        update={"pipelines": {**registry.pipelines, "harness-0": allowed}}
    )
    settings = Settings(
        mode="google",
        project=PROJECT,
        bucket=BUCKET,
        home=tmp_path,
        registry_path=harness.workdir / "registry.yaml",
        sections=(InteractionSettings(signing_secret=Secret(secret)),),
    )

    def click(action: str, times: int) -> list[Any]:
        use_ports(Ports(settings, registry=registry))
        try:
            client = http_function_client("interactions", "on_slack_request")
            body = button_body(original, action)
            return [
                client.post("/", data=body, headers=signed_headers(secret, body))
                for _ in range(times)
            ]
        finally:
            use_ports(None)

    answers = click("retry", 2)  # a double click
    assert [a.status_code for a in answers] == [200, 200]
    assert "already requested" in answers[1].get_data(as_text=True)

    attempt = f"{original}-r2"
    harness.wait_until(
        lambda: any(
            e.run_id == attempt and e.event_type == "pipeline.succeeded" for e in harness.events()
        ),
        SETTLE_SECONDS,
        "the attempt",
    )
    harness.wait_quiet()
    harness.drain()
    events = harness.events()
    assert not [e for e in events if e.run_id.startswith(f"{original}-r3")]
    accepted = [e for e in events if e.run_id == attempt and e.event_type == "trigger.accepted"]
    assert accepted and {e.details["retry_of"] for e in accepted} == {original}
    jobs = [v for v in harness.pipeline_jobs().values() if v["run_id"] == attempt]
    assert len(jobs) == 1  # three deliveries of the command, one pipeline job
    made = harness.read_json(f"runs/{attempt}/trigger.json")["result"]
    first = harness.read_json(f"runs/{original}/trigger.json")["result"]
    for field in ("pipeline", "parameters", "logical_time", "trigger"):
        assert made[field] == first[field], field
    assert made["command"]["requested_by"] == f"slack:{SLACK_USER}"

    messages = harness.slack.channel_messages(CHANNEL)
    top = [m for m in messages if m.thread_ts is None and (original in m.text)]
    assert top == [card]  # the attempt posted no card of its own at the top
    in_thread = [m for m in messages if m.thread_ts == card.ts]
    said = [m for m in in_thread if "trigger.retried" in m.text]
    assert len(said) == 1 and attempt in said[0].text
    assert f"→ attempt {attempt}" in json.dumps(card.blocks, ensure_ascii=False)  # used line
    attempt_card = [m for m in in_thread if m.blocks and attempt in json.dumps(m.blocks)]
    assert any(m.blocks[0]["text"]["text"].endswith("harness-0: succeeded") for m in attempt_card)

    # Rerun on the same snapshot: the next attempt, no new snapshot, the original's manifest
    harness.wait_quiet()
    [rerun_answer] = click("rerun", 1)
    assert rerun_answer.status_code == 200
    third = f"{original}-r3"
    harness.wait_until(
        lambda: any(
            e.run_id == third and e.event_type == "pipeline.succeeded" for e in harness.events()
        ),
        SETTLE_SECONDS,
        "the rerun",
    )
    harness.wait_quiet()
    assert harness.blobs(f"snapshots/harness_0/{third}/") == []
    assert not any(e.run_id == third and e.stage == "snapshot" for e in harness.events())
    [rerun_job] = [v for v in harness.pipeline_jobs().values() if v["run_id"] == third]
    [original_job] = [v for v in harness.pipeline_jobs().values() if v["run_id"] == original]
    assert rerun_job["snapshot_manifest_uri"] == original_job["snapshot_manifest_uri"]
    assert harness.read_json(f"runs/{third}/trigger.json")["result"]["attempt"] == 3
