"""mlrelay's completion reporter (the exit-handler component) publishing over Pub/Sub, and the one
final event per run of a kfp.local pipeline run by the deployer."""

from __future__ import annotations

from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from mlrelay.config.settings import Settings
from mlrelay.contracts import DeployRequest, LifecycleEvent, SnapshotRef
from mlrelay.kfp_components import report_pipeline_completion
from mlrelay.ports.container import use_ports
from mlrelay.registry import load_registry
from mlrelay.stage.echoes import RE_REQUEST
from mlrelay_tools.local.runtime import LocalRuntime
from tests.fakes.metadata_server import FakeMetadataServer
from tests.helpers import (
    REGISTRY,
    VERTEX_FAILURE,
    Capture,
    RecordingChat,
    final_status,
    make_runtime,
)
from tests.integration.kfp_components.failing_variant_pipeline import compile_failing_variant
from tests.integration.penguins_snapshot import make_snapshot


def test_reporter_publishes_to_the_lifecycle_topic_over_pubsub_rest(pubsub: str) -> None:
    from google.cloud import pubsub_v1  # type: ignore[attr-defined,unused-ignore]

    publisher = pubsub_v1.PublisherClient()
    subscriber = pubsub_v1.SubscriberClient()
    topic = publisher.topic_path("test-proj", "mlrelay-lifecycle")
    subscription = subscriber.subscription_path("test-proj", "lifecycle-completion")
    publisher.create_topic(name=topic)
    subscriber.create_subscription(name=subscription, topic=topic)

    report_pipeline_completion(
        status=final_status("FAILED", VERTEX_FAILURE), run_id="penguins-x-3", pipeline="penguins",
        destination=topic,
    )  # fmt: skip

    response = subscriber.pull(subscription=subscription, max_messages=5, timeout=30)
    [received] = response.received_messages
    event = LifecycleEvent.model_validate_json(received.message.data)
    assert event.event_type == "pipeline.failed"
    assert event.details["failed_task"] == "train"
    assert dict(received.message.attributes) == event.attributes()


def make_lifecycle_subscription(name: str) -> tuple[Any, str, str]:
    from google.cloud import pubsub_v1  # type: ignore[attr-defined,unused-ignore]

    publisher = pubsub_v1.PublisherClient()
    subscriber = pubsub_v1.SubscriberClient()
    topic = publisher.topic_path("test-proj", name)
    subscription = subscriber.subscription_path("test-proj", f"{name}-pull")
    publisher.create_topic(name=topic)
    subscriber.create_subscription(name=subscription, topic=topic)
    return subscriber, topic, subscription


def test_reporter_retries_a_failed_token_fetch_and_then_publishes(
    pubsub: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    subscriber, topic, subscription = make_lifecycle_subscription("lifecycle-token-retry")
    with FakeMetadataServer(failures=deque([503])) as metadata:
        monkeypatch.setenv("GCE_METADATA_HOST", metadata.address)

        report_pipeline_completion(
            status=final_status("SUCCEEDED"), run_id="penguins-x-4", pipeline="penguins",
            destination=topic,
        )  # fmt: skip

        assert len(metadata.token_requests()) == 2  # the 503, then the token

    response = subscriber.pull(subscription=subscription, max_messages=5, timeout=30)
    [received] = response.received_messages
    event = LifecycleEvent.model_validate_json(received.message.data)
    assert (event.event_type, event.run_id) == ("pipeline.succeeded", "penguins-x-4")


def test_reporter_names_the_pubsub_rest_error_it_cannot_retry(pubsub: str) -> None:
    missing = "projects/test-proj/topics/no-such-topic"

    with pytest.raises(RuntimeError) as raised:
        report_pipeline_completion(
            status=final_status("SUCCEEDED"), run_id="penguins-x-5", pipeline="penguins",
            destination=missing,
        )  # fmt: skip

    assert str(raised.value).startswith(f"Pub/Sub publish to {missing} answered 404 NOT_FOUND: ")


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


def publish_deploy(runtime: LocalRuntime, request: DeployRequest, asked: str = "") -> None:
    """`asked`: the request answers a new run request for a recorded run (mlrelay.stage.echoes)."""
    attributes = request.attributes() | ({RE_REQUEST: asked} if asked else {})
    runtime.bus.publish(runtime.settings.topics.deploys, request.to_json(), attributes)
    runtime.bus.run_until_idle()


@pytest.mark.pipeline
def test_local_run_reports_one_succeeded_event_from_the_exit_handler(
    runtime: LocalRuntime, capture: Capture, tmp_path: Path
) -> None:
    manifest, fingerprint = make_snapshot(tmp_path / "snapshot", "penguins-ok-1")

    publish_deploy(runtime, deploy_request(manifest, fingerprint, "penguins-ok-1"))

    # the demo's `promotion:` then puts the model on its endpoint (docs/promotion.md)
    assert capture.types() == ["pipeline.submitted", "pipeline.succeeded", "promotion.promoted"]
    succeeded = capture.events[1]
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
    assert capture.types() == []  # a duplicate runs nothing; its outcome is out (the marker)
    publish_deploy(runtime, deploy_request(manifest, "0" * 64, "penguins-bad-1"), asked="m-2")
    assert capture.types() == ["pipeline.failed"]  # a new request re-reports, runs nothing
    assert capture.events[0].details["reused"] is True


@pytest.mark.pipeline
def test_failing_variant_pipeline_reports_the_task_that_raised(
    settings: Settings, channel: RecordingChat, tmp_path: Path
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
