"""The Vertex log relay (`mlrelay-job-events`): a job that ends without its exit handler (failed
at start, cancelled, a task killed) still gets one final event, from the LogEntry Cloud Logging
writes (tests/fakes/vertex.py writes it as the log sink would), re-read with GetPipelineJob over
the official client's REST transport against the loopback Vertex AI. Every entry is delivered
three times; the exit handler's own report before or after it leaves one final Slack post."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from mlrelay.config.settings import Settings
from mlrelay.contracts import LifecycleEvent
from mlrelay.history import read_summary
from mlrelay.ports.container import use_ports
from mlrelay.stage import keys
from mlrelay_tools.local.runtime import LocalRuntime
from tests.fakes.vertex import KILLED, QUOTA, FakeVertex
from tests.helpers import Capture, RecordingChat
from tests.integration.deployer.cancel_commands import known_run
from tests.integration.deployer.vertex_deploys import RUN_ID, deploy, vertex_runtime

JOB = f"projects/test-proj/locations/europe-west4/pipelineJobs/{RUN_ID}"
FINAL = ("pipeline.succeeded", "pipeline.failed", "pipeline.cancelled")


@pytest.fixture
def runtime(
    settings: Settings, channel: RecordingChat, vertex: FakeVertex
) -> Iterator[LocalRuntime]:
    runtime = vertex_runtime(settings, channel, vertex)
    known_run(runtime, RUN_ID)
    deploy(runtime)
    topic = runtime.settings.topics.pipeline_job_events

    def sink(data: bytes, attributes: dict[str, str]) -> None:  # each entry delivered 3 times
        for _ in range(3):
            runtime.bus.publish(topic, data, attributes)

    vertex.log_sink = sink
    yield runtime
    vertex.log_sink = None
    use_ports(None)


@pytest.fixture
def events(runtime: LocalRuntime) -> Capture:
    capture = Capture(runtime.settings.topics.lifecycle)
    runtime.bus.listen(capture)
    return capture


def final(events: Capture) -> list[LifecycleEvent]:
    return [e for e in events.events if e.event_type in FINAL]


def exit_handler_report(status: str, state: str) -> LifecycleEvent:
    """What the pipeline's completion reporter publishes (mlrelay.kfp_components.completion)."""
    return LifecycleEvent(
        run_id=RUN_ID,
        pipeline="penguins",
        stage="pipeline",
        status=status,  # type: ignore[arg-type]
        summary=f"pipeline penguins {status}",
        error=f"final state {state}" if status == "failed" else None,
        details={"reported_by": "exit_handler", "final_state": state, "pipeline_job": JOB},
    )


def report_from_exit_handler(runtime: LocalRuntime, event: LifecycleEvent, times: int = 3) -> None:
    for _ in range(times):
        runtime.bus.publish(runtime.settings.topics.lifecycle, event.to_json(), event.attributes())
    runtime.bus.run_until_idle()


def end(runtime: LocalRuntime, vertex: FakeVertex, how: Any, name: str = JOB) -> None:
    vertex.end_job(name, how)
    runtime.bus.run_until_idle()


def final_posts(channel: RecordingChat, before: int) -> list[str]:
    return channel.posts[before:]


def test_a_task_killed_before_the_exit_handler_reports_one_failure_naming_the_task(
    runtime: LocalRuntime, events: Capture, vertex: FakeVertex, channel: RecordingChat
) -> None:
    before = len(channel.posts)

    end(runtime, vertex, "task_killed")

    [event] = final(events)
    assert event.event_type == "pipeline.failed" and event.run_id == RUN_ID
    assert event.pipeline == "penguins"
    assert event.summary == "pipeline failed at train"
    assert event.error == KILLED
    assert event.details["reported_by"] == "log_relay"
    assert event.details["final_state"] == "PIPELINE_STATE_FAILED"
    assert event.details["failed_task"] == "train"
    assert event.figures["duration_seconds"] == 1200.0
    assert event.links["console"].endswith(f"/pipelines/runs/{RUN_ID}?project=test-proj")
    gets = [r for r in vertex.requests if r.method == "GET" and r.path == f"/v1/{JOB}"]
    assert len(gets) >= 3  # every delivery re-reads the job (and a redelivery); one publishes
    assert runtime.store.read(keys.job_outcome(RUN_ID)) is not None
    assert len(final_posts(channel, before)) == 1
    summary = read_summary(runtime.store, "penguins", RUN_ID)
    assert summary is not None and summary.status == "failed"


@pytest.mark.parametrize(
    ("how", "status", "summary", "error"),
    [
        ("failed_at_start", "failed", "pipeline penguins failed before any task did", QUOTA),
        ("cancelled", "cancelled", "pipeline penguins was cancelled", None),
    ],
)
def test_each_way_a_job_ends_without_its_reporter_gives_its_one_final_event(
    runtime: LocalRuntime,
    events: Capture,
    vertex: FakeVertex,
    channel: RecordingChat,
    how: str,
    status: str,
    summary: str,
    error: str | None,
) -> None:
    before = len(channel.posts)

    end(runtime, vertex, how)

    [event] = final(events)
    assert event.status == status
    assert event.summary.startswith(summary)
    assert event.error == error
    assert event.details["reported_by"] == "log_relay"
    assert len(final_posts(channel, before)) == 1
    kept = read_summary(runtime.store, "penguins", RUN_ID)
    assert kept is not None and kept.status == status


def test_a_success_is_left_to_the_exit_handler_that_reports_it_with_the_metrics(
    runtime: LocalRuntime, events: Capture, vertex: FakeVertex
) -> None:
    end(runtime, vertex, "succeeded")

    assert final(events) == []  # penguins' template has the reporter: it says so itself
    assert runtime.store.read(keys.job_outcome(RUN_ID)) is None


@pytest.mark.parametrize(
    ("how", "reported"),
    [("task_killed", ("failed", "FAILED")), ("cancelled", ("cancelled", "CANCELLED")),
     ("succeeded", ("succeeded", "SUCCEEDED"))],
)  # fmt: skip
def test_relay_then_exit_handler_each_three_times_is_one_final_slack_state(
    runtime: LocalRuntime,
    events: Capture,
    vertex: FakeVertex,
    channel: RecordingChat,
    how: str,
    reported: tuple[str, str],
) -> None:
    before = len(channel.posts)

    end(runtime, vertex, how)
    report_from_exit_handler(runtime, exit_handler_report(*reported))

    relayed = [e for e in final(events) if e.details.get("reported_by") == "log_relay"]
    assert len(relayed) == (0 if how == "succeeded" else 1)  # a success is the reporter's
    assert len(final_posts(channel, before)) == 1


@pytest.mark.parametrize(
    ("how", "reported"),
    [("task_killed", ("failed", "FAILED")), ("succeeded", ("succeeded", "SUCCEEDED"))],
)
def test_exit_handler_then_relay_each_three_times_is_one_final_slack_state(
    runtime: LocalRuntime,
    events: Capture,
    vertex: FakeVertex,
    channel: RecordingChat,
    how: str,
    reported: tuple[str, str],
) -> None:
    before = len(channel.posts)

    report_from_exit_handler(runtime, exit_handler_report(*reported))
    end(runtime, vertex, how)

    assert not [e for e in final(events) if e.details.get("reported_by") == "log_relay"]
    assert runtime.store.read(keys.job_outcome(RUN_ID)) is None  # settled: nothing claimed
    assert len(final_posts(channel, before)) == 1


def test_a_job_without_the_run_label_is_acknowledged_with_no_event(
    runtime: LocalRuntime, events: Capture, vertex: FakeVertex
) -> None:
    hand_made = "projects/test-proj/locations/europe-west4/pipelineJobs/by-hand-1"
    vertex.add_job(hand_made, labels={"team": "ml"})
    seen = len(events.events)

    end(runtime, vertex, "task_killed", name=hand_made)

    assert events.events[seen:] == []  # no final event, no rejection
    assert not runtime.store.list(keys.REJECTED)


def test_a_labelled_job_this_ledger_never_deployed_is_skipped(
    runtime: LocalRuntime, events: Capture, vertex: FakeVertex
) -> None:
    other = "penguins-other-install-0123456789ab"
    vertex.add_job(
        f"projects/test-proj/locations/europe-west4/pipelineJobs/{other}",
        labels={"mlrelay-run-id": other, "mlrelay-pipeline": "penguins"},
    )
    seen = len(events.events)

    end(
        runtime, vertex, "cancelled",
        name=f"projects/test-proj/locations/europe-west4/pipelineJobs/{other}",
    )  # fmt: skip

    assert events.events[seen:] == []
    assert runtime.store.read(keys.job_outcome(other)) is None


@pytest.mark.parametrize(
    ("damage", "field"),
    [
        (
            lambda e: e["resource"]["labels"].pop("pipeline_job_id"),
            "resource.labels.pipeline_job_id",
        ),
        (lambda e: e["resource"].update(type="gce_instance"), "resource.type"),
        (lambda e: e.pop("logName"), "logName"),
    ],
)
def test_a_malformed_log_entry_is_rejected_naming_the_field(
    runtime: LocalRuntime, events: Capture, vertex: FakeVertex, damage: Any, field: str
) -> None:
    entry = vertex.log_entry(JOB, "PIPELINE_STATE_FAILED")
    damage(entry)

    runtime.bus.publish(runtime.settings.topics.pipeline_job_events, json.dumps(entry).encode(), {})
    runtime.bus.run_until_idle()

    [rejected] = [e for e in events.events if e.status == "rejected"]
    assert rejected.details["field"] == field
    assert not final(events)
    [kept] = runtime.store.list(keys.REJECTED)
    record = json.loads(runtime.store.read(kept) or b"{}")
    assert record["topic"] == "mlrelay-pipeline-job-events"  # where a replay sends it back


def test_an_entry_logged_before_the_deployer_recorded_its_job_waits_for_the_record(
    runtime: LocalRuntime, events: Capture, vertex: FakeVertex
) -> None:
    from mlrelay.errors import TransientError
    from mlrelay.stage.ledger import StageRecord
    from mlrelay_deployer.job_events import PipelineJobLogEntry, relay_job_event

    key = keys.ledger(RUN_ID, "pipeline")
    done = runtime.store.read(key)
    assert done is not None
    claim = StageRecord(
        "pipeline", "running", "2026-11-25T06:00:00+00:00", "2999-01-01T00:00:00+00:00"
    )
    runtime.store.write(key, claim.to_json())  # the deployer's claim, its record not written yet
    vertex.log_sink = None
    vertex.end_job(JOB, "failed_at_start")
    entry = PipelineJobLogEntry.model_validate(vertex.log_entry(JOB, "PIPELINE_STATE_FAILED"))

    with pytest.raises(TransientError, match="has not recorded job"):
        relay_job_event(entry, None, runtime.ports)  # type: ignore[arg-type]
    assert runtime.store.read(keys.job_outcome(RUN_ID)) is None

    runtime.store.write(key, done)  # the deployer finished: the redelivery reports the failure
    assert relay_job_event(entry, None, runtime.ports) is True  # type: ignore[arg-type]
    runtime.bus.run_until_idle()
    [event] = final(events)
    assert event.event_type == "pipeline.failed" and event.error == QUOTA
