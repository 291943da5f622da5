"""The watchdog pass wired to the real backends (`mlrelay_deployer.watchdog.wiring`): a job that
ended without a word from its reporters (the exit handler never ran, the log sink's entry never
came) is asked of the service and reported once, through the relay's own claim, by the official
Vertex AI client against the loopback PipelineService and the real `kfp.Client` against the
loopback KFP host (which has no log sink: the watchdog is its only net). A job that just ended
is left to its own reporters for REPORT_GRACE; a relay entry arriving after the watchdog's report
adds nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from mlrelay.config.settings import Settings
from mlrelay.contracts import LifecycleEvent
from mlrelay.history import read_summary
from mlrelay.ports.container import use_ports
from mlrelay.stage.ledger import read_run
from mlrelay.stage.open_runs import OpenRun, list_open, mark_open
from mlrelay_deployer.kfp_backend import KfpHostBackend
from mlrelay_deployer.watchdog.stalled import REPORT_GRACE
from mlrelay_deployer.watchdog.sweep import run_pass
from mlrelay_deployer.watchdog.wiring import watchdog_deps
from mlrelay_tools.local.runtime import LocalRuntime
from tests.fakes.kfp import FakeKfp
from tests.fakes.vertex import KILLED, FakeVertex
from tests.helpers import Capture, RecordingChat, make_runtime
from tests.integration.deployer.cancel_commands import known_run
from tests.integration.deployer.test_cancel_kfp import kfp_registry
from tests.integration.deployer.vertex_deploys import RUN_ID, deploy, vertex_runtime
from tests.watchdog_kit import Clock, snapshotted

JOB = f"projects/test-proj/locations/europe-west4/pipelineJobs/{RUN_ID}"
ENDED = datetime(2026, 11, 25, 6, 30, tzinfo=UTC)
FINAL = ("pipeline.succeeded", "pipeline.failed", "pipeline.cancelled")


def watched(runtime: LocalRuntime) -> None:
    """What the trigger and the snapshotter leave of the run: its entry in the open-run index and
    the snapshot's record."""
    slot = datetime(2026, 11, 23, 5, tzinfo=UTC)
    mark_open(
        runtime.store, OpenRun(RUN_ID, "penguins", slot.isoformat(), slot.isoformat(), "schedule")
    )
    snapshotted(runtime.store, RUN_ID, slot + timedelta(minutes=5))


def finals(capture: Capture) -> list[LifecycleEvent]:
    return [e for e in capture.events if e.event_type in FINAL]


@pytest.fixture
def on_vertex(
    settings: Settings, channel: RecordingChat, vertex: FakeVertex
) -> Iterator[LocalRuntime]:
    runtime = vertex_runtime(settings, channel, vertex)
    known_run(runtime, RUN_ID)
    watched(runtime)
    deploy(runtime)
    yield runtime
    vertex.log_sink = None
    use_ports(None)


def test_a_vertex_job_killed_silently_is_reported_once_by_the_watchdog_after_the_grace(
    on_vertex: LocalRuntime, vertex: FakeVertex, channel: RecordingChat
) -> None:
    runtime = on_vertex
    events = Capture(runtime.settings.topics.lifecycle)
    runtime.bus.listen(events)
    lost: list[tuple[bytes, dict[str, str]]] = []
    vertex.log_sink = lambda data, attributes: lost.append(
        (data, attributes)
    )  # the sink's entry never comes
    vertex.end_job(JOB, "task_killed", at=ENDED)
    clock = Clock(ENDED + REPORT_GRACE / 2)

    early = run_pass(watchdog_deps(runtime.ports, now=clock))
    runtime.bus.run_until_idle()
    assert finals(events) == [] and not [f for f in early.findings if f.kind == "reported"]

    clock.advance(minutes=10)
    for _ in range(3):  # three ticks (or one redelivered): one report
        run_pass(watchdog_deps(runtime.ports, now=clock))
        runtime.bus.run_until_idle()

    [event] = finals(events)
    assert (event.event_type, event.details["reported_by"]) == ("pipeline.failed", "watchdog")
    assert event.details["failed_task"] == "train" and event.error == KILLED
    summary = read_summary(runtime.store, "penguins", RUN_ID)
    assert summary is not None and summary.status == "failed"
    assert list_open(runtime.store) == []  # settled: the next pass does not look at it again

    # the log sink's entry, late, three times: the relay finds the run settled
    topic = runtime.settings.topics.pipeline_job_events
    for _ in range(3):
        runtime.bus.publish(topic, *lost[0])
    runtime.bus.run_until_idle()
    assert len(finals(events)) == 1
    assert sum("pipeline.failed" in post for post in channel.posts) == 1
    assert not [post for post in channel.posts if "dead_lettered" in post]


@pytest.fixture
def kfp_host() -> Iterator[FakeKfp]:
    with FakeKfp() as fake:
        yield fake


def test_a_kfp_run_that_failed_without_its_exit_handler_is_reported_by_the_watchdog(
    settings: Settings, channel: RecordingChat, kfp_host: FakeKfp
) -> None:
    registry = kfp_registry(kfp_host.host)
    backend = KfpHostBackend(
        registry.pipelines["penguins"].kfp,  # type: ignore[arg-type]
        "projects/test-proj/topics/mlrelay-lifecycle",
        backoff_seconds=0.01,
    )
    runtime = make_runtime(
        settings, channel, registry=registry, pipeline_backends={"penguins": backend}
    )
    try:
        known_run(runtime, RUN_ID)
        watched(runtime)
        deploy(runtime)
        events = Capture(runtime.settings.topics.lifecycle)
        runtime.bus.listen(events)
        job_name = str(read_run(runtime.store, RUN_ID)["pipeline"].result["job_name"])  # type: ignore[index]
        clock = Clock(ENDED + timedelta(minutes=1))

        running = run_pass(watchdog_deps(runtime.ports, now=clock))  # pending, within its window
        assert running.findings == []

        kfp_host.runs[job_name].update(
            state="FAILED",
            finished_at="2026-11-25T06:30:00Z",
            error={"code": 9, "message": "the DAG failed"},
            run_details={"task_details": [
                {"run_id": job_name, "task_id": "t1", "display_name": "root", "state": "FAILED"},
                {"run_id": job_name, "task_id": "t2", "parent_task_id": "t1",
                 "display_name": "train", "state": "FAILED",
                 "error": {"code": 9, "message": "OOMKilled"}},
            ]},
        )  # fmt: skip
        clock.advance(minutes=15)
        for _ in range(2):
            run_pass(watchdog_deps(runtime.ports, now=clock))
            runtime.bus.run_until_idle()

        [event] = finals(events)
        assert (event.event_type, event.details["reported_by"]) == ("pipeline.failed", "watchdog")
        assert event.summary == "pipeline failed at train"
        assert event.details["final_state"] == "FAILED"
        assert list_open(runtime.store) == []
    finally:
        use_ports(None)
