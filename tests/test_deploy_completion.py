"""mlrelay's completion reporter (the exit-handler component) and the one final event per run."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kfp.dsl import PipelineTaskFinalStatus

from mlrelay.config.settings import Settings
from mlrelay.contracts import DeployRequest, LifecycleEvent, SnapshotRef
from mlrelay.kfp_components import report_pipeline_completion
from mlrelay.ports.container import use_ports
from mlrelay.registry import load_registry
from mlrelay_tools.local.runtime import LocalRuntime

from .failing_variant_pipeline import compile_failing_variant
from .helpers import REGISTRY, Capture, RecordingChannel, make_runtime
from .peers import pubsub_emulator
from .test_penguins_pipeline import make_snapshot

VERTEX_FAILURE = (
    "The DAG failed because some tasks failed. The failed tasks are: [train].; Job (project_id = "
    "p, job_id = 123) is failed due to the above error."
)


def status(state: str, message: str | None = None) -> PipelineTaskFinalStatus:
    return PipelineTaskFinalStatus(
        state=state,
        pipeline_job_resource_name="projects/p/locations/europe-west4/pipelineJobs/run-1",
        pipeline_task_name="exit-handler-1",
        error_code=None if message is None else 9,
        error_message=message,
    )


def read_outbox(folder: Path, run_id: str) -> tuple[LifecycleEvent, dict[str, str]]:
    document = json.loads((folder / f"{run_id}.json").read_text())
    return LifecycleEvent.model_validate(document["data"]), document["attributes"]


def test_reporter_writes_a_valid_succeeded_event_with_mlrelay_attributes(tmp_path: Path) -> None:
    report_pipeline_completion(
        status=status("SUCCEEDED"), run_id="penguins-x-1", pipeline="penguins",
        destination=str(tmp_path),
    )  # fmt: skip

    event, attributes = read_outbox(tmp_path, "penguins-x-1")
    assert event.event_type == "pipeline.succeeded"
    assert (event.run_id, event.pipeline, event.error) == ("penguins-x-1", "penguins", None)
    assert event.details["reported_by"] == "exit_handler"
    assert attributes == event.attributes()


def test_reporter_names_the_failed_task_from_vertex_final_status(tmp_path: Path) -> None:
    report_pipeline_completion(
        status=status("FAILED", VERTEX_FAILURE), run_id="penguins-x-2", pipeline="penguins",
        destination=tmp_path.as_uri(),
    )  # fmt: skip

    event, attributes = read_outbox(tmp_path, "penguins-x-2")
    assert event.event_type == "pipeline.failed"
    assert event.details["failed_task"] == "train"
    assert event.summary == "pipeline failed at train"
    assert event.error == VERTEX_FAILURE
    assert attributes == event.attributes()


def test_reporter_with_no_destination_reports_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    report_pipeline_completion(
        status=status("CANCELLED", "cancelled by user"), run_id="r-1", pipeline="p",
        destination="",
    )  # fmt: skip
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with pubsub_emulator(tmp_path_factory.mktemp("pubsub")) as host:
        yield host


@pytest.mark.integration
def test_reporter_publishes_to_the_lifecycle_topic_over_pubsub_rest(
    emulator: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from google.cloud import pubsub_v1  # type: ignore[attr-defined,unused-ignore]

    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", emulator)
    publisher = pubsub_v1.PublisherClient()
    subscriber = pubsub_v1.SubscriberClient()
    topic = publisher.topic_path("test-proj", "mlrelay-lifecycle")
    subscription = subscriber.subscription_path("test-proj", "lifecycle-completion")
    publisher.create_topic(name=topic)
    subscriber.create_subscription(name=subscription, topic=topic)

    report_pipeline_completion(
        status=status("FAILED", VERTEX_FAILURE), run_id="penguins-x-3", pipeline="penguins",
        destination=topic,
    )  # fmt: skip

    response = subscriber.pull(subscription=subscription, max_messages=5, timeout=30)
    [received] = response.received_messages
    event = LifecycleEvent.model_validate_json(received.message.data)
    assert event.event_type == "pipeline.failed"
    assert event.details["failed_task"] == "train"
    assert dict(received.message.attributes) == event.attributes()


def deploy_request(manifest: Path, fingerprint: str, run_id: str) -> DeployRequest:
    now = datetime(2026, 11, 25, 6, tzinfo=UTC)
    return DeployRequest(
        run_id=run_id,
        pipeline="penguins",
        parameters={"min_year": 2007, "test_fraction": 0.25, "n_estimators": 20, "max_depth": 6,
                    "seed": 42},
        logical_time=now,
        trigger="manual",
        accepted_at=now,
        snapshot=SnapshotRef(manifest_uri=manifest.as_uri(), fingerprint=fingerprint,
                             row_count=344, total_bytes=1, file_count=1),
    )  # fmt: skip


def publish_deploy(runtime: LocalRuntime, request: DeployRequest) -> None:
    runtime.bus.publish(runtime.settings.topics.deploys, request.to_json(), request.attributes())
    runtime.bus.run_until_idle()


@pytest.mark.pipeline
def test_local_run_reports_one_succeeded_event_from_the_exit_handler(
    runtime: LocalRuntime, capture: Capture, tmp_path: Path
) -> None:
    manifest, fingerprint = make_snapshot(tmp_path / "snapshot", "penguins-ok-1")

    publish_deploy(runtime, deploy_request(manifest, fingerprint, "penguins-ok-1"))

    assert capture.types() == ["pipeline.submitted", "pipeline.succeeded"]
    succeeded = capture.events[-1]
    assert succeeded.details["reported_by"] == "exit_handler"
    assert succeeded.details["final_state"] == "SUCCEEDED"
    assert float(succeeded.figures["accuracy"]) > 0.9
    assert Path(succeeded.details["outputs"]["model"]).is_file()
    assert succeeded.parameters["n_estimators"] == 20


@pytest.mark.pipeline
def test_failing_run_reports_one_failed_event_naming_the_failing_task(
    runtime: LocalRuntime, capture: Capture, tmp_path: Path
) -> None:
    manifest, _ = make_snapshot(tmp_path / "snapshot", "penguins-bad-1")

    publish_deploy(runtime, deploy_request(manifest, "0" * 64, "penguins-bad-1"))

    assert capture.types() == ["pipeline.submitted", "pipeline.failed"]
    failed = capture.events[-1]
    assert failed.details["reported_by"] == "exit_handler"
    assert failed.details["final_state"] == "FAILED"
    assert failed.details["failed_task"] == "preprocess"
    assert failed.summary == "pipeline failed at preprocess"
    assert failed.error is not None and "fingerprint mismatch" in failed.error

    capture.events.clear()
    publish_deploy(runtime, deploy_request(manifest, "0" * 64, "penguins-bad-1"))
    assert capture.types() == ["pipeline.failed"]  # a duplicate re-reports, runs nothing
    assert capture.events[0].details["reused"] is True


@pytest.mark.pipeline
def test_failing_variant_pipeline_reports_the_task_that_raised(
    settings: Settings, channel: RecordingChannel, tmp_path: Path
) -> None:
    template = compile_failing_variant(tmp_path / "failing.yaml")
    registry = load_registry(REGISTRY)
    spec = registry.pipelines["penguins"].model_copy(update={"template": str(template)})
    runtime = make_runtime(
        settings, channel, registry=registry.model_copy(update={"pipelines": {"penguins": spec}})
    )
    capture = Capture(settings.topics.lifecycle)
    runtime.bus.listen(capture)
    try:
        publish_deploy(runtime, deploy_request(tmp_path / "unused.json", "0" * 64, "penguins-v-1"))
    finally:
        use_ports(None)

    assert capture.types() == ["pipeline.submitted", "pipeline.failed"]
    failed = capture.events[-1]
    assert failed.details["reported_by"] == "exit_handler"
    assert failed.details["failed_task"] == "explode"
    assert failed.error is not None and "deliberate failure after 'prepared penguins-v-1'" in (
        failed.error
    )
