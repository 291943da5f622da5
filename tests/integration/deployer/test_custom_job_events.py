"""How a `vertex_custom_job` run ends: a custom job has no exit handler, so every end of it,
success included, comes from the service. The log relay reads the service's own line at the
job's end (an `ml_job` LogEntry, each delivered three times, as the sink publishes it: see
tests/fakes/vertex_custom_jobs.py), re-reads the job with GetCustomJob and publishes one final
event; a success carries the metrics the job wrote to `jobs/<run_id>/metrics.json`, which the
gates judge. Without a LogEntry the watchdog asks GetCustomJob and reports the end itself, at
once (no exit handler to wait for)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from mlrelay.config.settings import Settings
from mlrelay.contracts import LifecycleEvent
from mlrelay.history import read_summary
from mlrelay.ports.container import use_ports
from mlrelay.stage import keys
from mlrelay.stage.ledger import read_run
from mlrelay.stage.open_runs import OpenRun, list_open, mark_open
from mlrelay_deployer.watchdog.sweep import run_pass
from mlrelay_deployer.watchdog.wiring import watchdog_deps
from mlrelay_tools.local.runtime import LocalRuntime
from tests.fakes.vertex import FakeVertex
from tests.fakes.vertex_custom_jobs import OOM
from tests.helpers import Capture, RecordingChat
from tests.integration.deployer.cancel_commands import known_run
from tests.integration.deployer.custom_job_deploys import custom_job_runtime
from tests.integration.deployer.vertex_deploys import RUN_ID, deploy
from tests.watchdog_kit import Clock, snapshotted

FINAL = ("pipeline.succeeded", "pipeline.failed", "pipeline.cancelled")
ENDED = datetime(2026, 11, 25, 6, 30, tzinfo=UTC)


@pytest.fixture
def runtime(
    settings: Settings, channel: RecordingChat, vertex: FakeVertex
) -> Iterator[LocalRuntime]:
    vertex.reset()
    vertex.custom_jobs.reset()
    runtime = custom_job_runtime(settings, channel, vertex.endpoint)
    known_run(runtime, RUN_ID)
    slot = datetime(2026, 11, 23, 5, tzinfo=UTC)
    mark_open(
        runtime.store, OpenRun(RUN_ID, "penguins", slot.isoformat(), slot.isoformat(), "schedule")
    )
    snapshotted(runtime.store, RUN_ID, slot + timedelta(minutes=5))
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


def job_name(runtime: LocalRuntime) -> str:
    record = read_run(runtime.store, RUN_ID)["pipeline"]
    assert record.result is not None
    return str(record.result["job_name"])


def write_metrics(runtime: LocalRuntime, metrics: dict[str, object]) -> None:
    """What the job does before it exits (the job contract): its metrics in its folder."""
    runtime.store.write(f"{keys.job_output(RUN_ID)}metrics.json", json.dumps(metrics).encode())


def test_a_custom_job_that_succeeds_is_one_success_with_its_metrics_from_the_relay(
    runtime: LocalRuntime, events: Capture, vertex: FakeVertex, channel: RecordingChat
) -> None:
    before = len(channel.posts)
    write_metrics(runtime, {"accuracy": 0.97, "f1_macro": 0.95, "note": "not a number"})
    name = job_name(runtime)

    vertex.custom_jobs.end_job(name, "succeeded", at=ENDED)
    runtime.bus.run_until_idle()

    [event] = final(events)
    assert event.event_type == "pipeline.succeeded" and event.run_id == RUN_ID
    assert event.details["reported_by"] == "log_relay"
    assert event.details["final_state"] == "JOB_STATE_SUCCEEDED"
    assert event.figures == {"accuracy": 0.97, "f1_macro": 0.95, "duration_seconds": 1200.0}
    out = runtime.store.uri(keys.job_output(RUN_ID)).rstrip("/") + "/"
    assert event.details["outputs"] == {"model": f"{out}model/"}
    assert event.links["console"].endswith(f"/training/{name.rsplit('/', 1)[1]}?project=test-proj")
    job_id = name.rsplit("/", 1)[1]
    gets = [r for r in vertex.requests if r.method == "GET" and r.path.endswith(f"/{job_id}")]
    # each delivery (and the redelivery of one that met another at work) re-reads the job, by
    # the project's id and the registry's region; one publishes
    assert len(gets) >= 3
    assert {r.path for r in gets} == {
        f"/v1/projects/test-proj/locations/europe-west4/customJobs/{job_id}"
    }
    assert len(channel.posts) - before == 1
    summary = read_summary(runtime.store, "penguins", RUN_ID)
    assert summary is not None and summary.status == "succeeded"
    assert summary.metrics["accuracy"] == 0.97
    assert list_open(runtime.store) == []


def test_a_custom_job_below_its_gate_succeeds_with_regression(
    runtime: LocalRuntime, events: Capture, vertex: FakeVertex
) -> None:
    write_metrics(runtime, {"accuracy": 0.62})  # the registry's gate: accuracy min 0.9

    vertex.custom_jobs.end_job(job_name(runtime), "succeeded", at=ENDED)
    runtime.bus.run_until_idle()

    [event] = final(events)
    assert event.figures["accuracy"] == 0.62
    summary = read_summary(runtime.store, "penguins", RUN_ID)
    assert summary is not None and summary.status == "succeeded_with_regression"


@pytest.mark.parametrize(
    ("how", "event_type", "error", "summary"),
    [
        ("failed", "pipeline.failed", OOM, "the job of penguins failed (JOB_STATE_FAILED)"),
        ("cancelled", "pipeline.cancelled", None, "pipeline penguins was cancelled"),
    ],
)
def test_a_custom_job_that_fails_or_is_cancelled_is_one_final_event_from_the_relay(
    runtime: LocalRuntime,
    events: Capture,
    vertex: FakeVertex,
    channel: RecordingChat,
    how: str,
    event_type: str,
    error: str | None,
    summary: str,
) -> None:
    before = len(channel.posts)

    vertex.custom_jobs.end_job(job_name(runtime), how, at=ENDED)  # type: ignore[arg-type]
    runtime.bus.run_until_idle()

    [event] = final(events)
    assert (event.event_type, event.error, event.summary) == (event_type, error, summary)
    assert event.details["reported_by"] == "log_relay"
    assert "outputs" not in event.details
    assert len(channel.posts) - before == 1


def test_service_lines_of_a_running_job_or_of_a_job_not_mlrelays_publish_nothing(
    runtime: LocalRuntime, events: Capture, vertex: FakeVertex
) -> None:
    name = job_name(runtime)
    vertex.custom_jobs.set_state(name, "JOB_STATE_RUNNING")
    entry = vertex.custom_jobs.log_entry(name, "JOB_STATE_SUCCEEDED")  # an early or odd line
    topic = runtime.settings.topics.pipeline_job_events
    runtime.bus.publish(topic, json.dumps(entry).encode(), {})
    worker = {**entry, "resource": {**entry["resource"], "labels": {
        **entry["resource"]["labels"], "task_name": "workerpool0-0"}}}  # fmt: skip
    runtime.bus.publish(topic, json.dumps(worker).encode(), {})
    other = json.loads(json.dumps(entry))
    other["resource"]["labels"]["job_id"] = "999"  # no such job in the registry's regions
    runtime.bus.publish(topic, json.dumps(other).encode(), {})
    runtime.bus.run_until_idle()

    assert final(events) == []
    assert runtime.store.read(keys.job_outcome(RUN_ID)) is None
    assert not runtime.store.list("rejected/")  # acknowledged, not rejected


def test_without_a_log_entry_the_watchdog_reports_a_custom_jobs_end_at_once_and_once(
    runtime: LocalRuntime, events: Capture, vertex: FakeVertex, channel: RecordingChat
) -> None:
    name = job_name(runtime)
    lost: list[tuple[bytes, dict[str, str]]] = []
    vertex.log_sink = lambda data, attributes: lost.append((data, attributes))  # never comes
    vertex.custom_jobs.end_job(name, "preempted", at=ENDED)
    clock = Clock(ENDED + timedelta(minutes=1))  # no exit handler to leave it to: no grace

    for _ in range(3):
        run_pass(watchdog_deps(runtime.ports, now=clock))
        runtime.bus.run_until_idle()

    [event] = final(events)
    assert (event.event_type, event.details["reported_by"]) == ("pipeline.failed", "watchdog")
    assert event.error is not None and "preempted" in event.error
    assert list_open(runtime.store) == []

    for _ in range(3):  # the sink's entry, late: the run is settled
        runtime.bus.publish(runtime.settings.topics.pipeline_job_events, *lost[0])
    runtime.bus.run_until_idle()
    assert len(final(events)) == 1
    assert sum("pipeline.failed" in post for post in channel.posts) == 1


def test_the_watchdog_reports_a_success_with_the_jobs_metrics_too(
    runtime: LocalRuntime, events: Capture, vertex: FakeVertex
) -> None:
    write_metrics(runtime, {"accuracy": 0.93})
    vertex.custom_jobs.end_job(job_name(runtime), "succeeded", at=ENDED, log=False)

    run_pass(watchdog_deps(runtime.ports, now=Clock(ENDED + timedelta(seconds=30))))
    runtime.bus.run_until_idle()

    [event] = final(events)
    assert event.event_type == "pipeline.succeeded"
    assert event.details["reported_by"] == "watchdog"
    assert event.figures["accuracy"] == 0.93
