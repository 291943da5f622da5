"""Cancel on Vertex AI: the deployer's `mlrelay-cancel` consumer, the official `aiplatform_v1`
client over REST, and the loopback PipelineService (tests/fakes/vertex.py), which moves a job to
CANCELLING and answers FAILED_PRECONDITION for a finished one, as the service does."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud.aiplatform_v1.services.pipeline_service import PipelineServiceClient

from mlrelay.config.settings import Settings
from mlrelay.history import RunSummary, write_summary
from mlrelay.ports.container import use_ports
from mlrelay.stage import keys
from mlrelay_deployer.vertex_backend import VertexPipelineBackend
from mlrelay_tools.local.runtime import LocalRuntime
from tests.fakes.fault_proxy import LOSE, FaultProxy
from tests.fakes.vertex import FakeVertex
from tests.helpers import Capture, RecordingChat, make_runtime
from tests.integration.deployer.cancel_commands import (
    ASKED_AT,
    STATE,
    cancel_command,
    known_run,
    send,
)
from tests.integration.deployer.vertex_deploys import OPTIONS, RUN_ID, deploy, vertex_registry

JOB = f"projects/test-proj/locations/europe-west4/pipelineJobs/{RUN_ID}"


@pytest.fixture
def proxy(vertex: FakeVertex) -> Iterator[FaultProxy]:
    vertex.reset()
    proxy = FaultProxy(vertex.endpoint.removeprefix("http://"), "vertex").start()
    yield proxy
    proxy.stop()


@pytest.fixture
def runtime(
    settings: Settings, channel: RecordingChat, proxy: FaultProxy
) -> Iterator[LocalRuntime]:
    client = PipelineServiceClient(
        transport="rest",
        client_options={"api_endpoint": proxy.url},
        credentials=AnonymousCredentials(),
    )
    backend = VertexPipelineBackend(
        OPTIONS, "projects/test-proj/topics/mlrelay-lifecycle", client=client,
        retry_deadline_seconds=3.0, request_timeout_seconds=5.0,
    )  # fmt: skip
    runtime = make_runtime(
        settings, channel, registry=vertex_registry(), pipeline_backends={"penguins": backend}
    )
    known_run(runtime, RUN_ID)
    deploy(runtime)
    yield runtime
    use_ports(None)


@pytest.fixture
def events(runtime: LocalRuntime) -> Capture:
    capture = Capture(runtime.settings.topics.lifecycle)
    runtime.bus.listen(capture)
    return capture


def cancelled(events: Capture) -> list[str]:
    return [e.event_type for e in events.events if e.status == "cancelled"]


def test_cancel_asks_vertex_to_cancel_the_runs_job_and_reports_who_asked(
    runtime: LocalRuntime, events: Capture, vertex: FakeVertex
) -> None:
    send(runtime, cancel_command(RUN_ID))

    [cancel] = vertex.cancels()
    assert cancel.method == "POST"
    assert cancel.path == f"/v1/{JOB}:cancel"
    assert cancel.body in ({}, None)
    assert vertex.jobs[JOB]["state"] == "PIPELINE_STATE_CANCELLING"
    [event] = [e for e in events.events if e.status == "cancelled"]
    assert event.event_type == "pipeline.cancelled"
    assert event.run_id == RUN_ID and event.pipeline == "penguins"
    assert event.details == {
        "command": {
            "action": "cancel",
            "requested_by": "slack:U0ONCALL",
            "requested_at": ASKED_AT.isoformat(),
            "source": "slack",
        }
    }
    assert event.links["console"].endswith(f"/pipelines/runs/{RUN_ID}?project=test-proj")


def test_the_same_command_three_times_cancels_once_and_reports_once(
    runtime: LocalRuntime, events: Capture, vertex: FakeVertex
) -> None:
    send(runtime, cancel_command(RUN_ID), times=3)

    assert len(vertex.cancels()) == 1
    assert cancelled(events) == ["pipeline.cancelled"]
    assert runtime.store.read(keys.command_done(RUN_ID, "cancel", STATE)) is not None


def test_a_lost_answer_is_redelivered_and_still_one_job_is_cancelled_once(
    runtime: LocalRuntime, events: Capture, vertex: FakeVertex, proxy: FaultProxy
) -> None:
    proxy.fail_next(LOSE, path=":cancel")

    send(runtime, cancel_command(RUN_ID))

    assert proxy.pending_faults() == 0  # the cancel reached Vertex AI; its answer did not
    # the redelivery cancels again: OK for a job Vertex AI is cancelling, and nothing else
    assert [r.path for r in vertex.cancels()] == [f"/v1/{JOB}:cancel"] * 2
    assert vertex.jobs[JOB]["state"] == "PIPELINE_STATE_CANCELLING"
    assert cancelled(events) == ["pipeline.cancelled"]
    assert not [e for e in events.events if e.status == "rejected"]


def test_a_lost_answer_after_the_job_was_cancelled_is_still_success(
    runtime: LocalRuntime, events: Capture, vertex: FakeVertex, proxy: FaultProxy
) -> None:
    proxy.fail_next(LOSE, path=":cancel")
    original = proxy._answer

    def settle_then_answer(request):  # type: ignore[no-untyped-def]
        answer = original(request)
        vertex.finish_cancelling()  # the service finished the cancel before the redelivery
        return answer

    proxy._answer = settle_then_answer  # type: ignore[method-assign]
    send(runtime, cancel_command(RUN_ID))

    assert vertex.jobs[JOB]["state"] == "PIPELINE_STATE_CANCELLED"
    assert cancelled(events) == ["pipeline.cancelled"]
    assert not [e for e in events.events if e.status == "rejected"]


def test_cancel_of_a_run_mlrelay_knows_is_finished_calls_nothing_and_says_its_state(
    runtime: LocalRuntime, events: Capture, vertex: FakeVertex
) -> None:
    write_summary(
        runtime.store,
        RunSummary(run_id=RUN_ID, pipeline="penguins", status="succeeded", finished_at=ASKED_AT),
    )

    send(runtime, cancel_command(RUN_ID), times=2)

    assert vertex.cancels() == []
    assert cancelled(events) == []
    rejected = [e for e in events.events if e.status == "rejected"]
    assert rejected and all(
        f"{RUN_ID} has already ended (succeeded)" in str(e.error) for e in rejected
    )
    assert runtime.store.list(keys.REJECTED)


def test_cancel_of_a_job_vertex_says_is_finished_is_refused_with_its_state(
    runtime: LocalRuntime, events: Capture, vertex: FakeVertex
) -> None:
    vertex.set_state(JOB, "PIPELINE_STATE_FAILED")

    send(runtime, cancel_command(RUN_ID))

    assert len(vertex.cancels()) == 1
    assert vertex.jobs[JOB]["state"] == "PIPELINE_STATE_FAILED"
    assert cancelled(events) == []
    [rejected] = [e for e in events.events if e.status == "rejected"]
    assert "no longer running on Vertex AI (PIPELINE_STATE_FAILED)" in str(rejected.error)


def test_cancel_of_a_run_not_submitted_yet_is_refused_naming_its_stage(
    runtime: LocalRuntime, events: Capture, vertex: FakeVertex
) -> None:
    other = "penguins-demo-2-0123456789ab"
    known_run(runtime, other)

    send(runtime, cancel_command(other))

    assert vertex.cancels() == []
    [rejected] = [e for e in events.events if e.status == "rejected"]
    assert f"{other} is not submitted yet (trigger stage)" in str(rejected.error)
