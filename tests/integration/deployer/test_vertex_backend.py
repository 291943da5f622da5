"""The Vertex AI backend: the official `aiplatform_v1` client over REST against a loopback server
that plays the PipelineService (tests/fakes/vertex.py) and records what the client sent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlrelay.config.settings import Settings
from mlrelay.errors import TransientError
from mlrelay.ports.container import use_ports
from mlrelay.stage import keys
from mlrelay.stage.ledger import read_run
from mlrelay_deployer.vertex_backend import VertexPipelineBackend
from mlrelay_tools.local.runtime import LocalRuntime
from tests.fakes.vertex import FakeVertex
from tests.helpers import PENGUINS_TEMPLATE, Capture, RecordingChat, make_runtime
from tests.integration.deployer.vertex_deploys import (
    FINGERPRINT,
    OPTIONS,
    RUN_ID,
    deploy,
    vertex_registry,
)

JOBS = "/v1/projects/test-proj/locations/europe-west4/pipelineJobs"


@pytest.fixture
def runtime_on_vertex(
    settings: Settings, channel: RecordingChat, backend: VertexPipelineBackend
) -> Iterator[LocalRuntime]:
    yield make_runtime(
        settings,
        channel,
        registry=vertex_registry(),
        pipeline_backends={"penguins": backend},
    )
    use_ports(None)


@pytest.fixture
def events(runtime_on_vertex: LocalRuntime) -> Capture:
    capture = Capture(runtime_on_vertex.settings.topics.lifecycle)
    runtime_on_vertex.bus.listen(capture)
    return capture


def test_deploy_creates_a_pipeline_job_named_after_the_run_with_snapshot_and_labels(
    runtime_on_vertex: LocalRuntime, events: Capture, vertex: FakeVertex
) -> None:
    deploy(runtime_on_vertex)

    [create] = vertex.creates()
    assert create.path == JOBS
    assert create.query["pipelineJobId"] == [RUN_ID]
    body = create.body
    assert body["displayName"] == RUN_ID
    assert body["runtimeConfig"] == {
        "gcsOutputDirectory": "gs://mlrelay-test-pipelines/root",
        "parameterValues": {
            "run_id": RUN_ID,
            "snapshot_manifest_uri": f"gs://mlrelay-test/snapshots/penguins/{RUN_ID}/manifest.json",
            "snapshot_fingerprint": FINGERPRINT,
            "test_fraction": 0.25,
            "n_estimators": 200.0,
            "max_depth": 6.0,
            "seed": 42.0,
            "mlrelay_pipeline": "penguins",
            "mlrelay_lifecycle_destination": "projects/test-proj/topics/mlrelay-lifecycle",
        },
    }
    assert body["labels"] == {
        "mlrelay-run-id": RUN_ID,
        "mlrelay-pipeline": "penguins",
        "mlrelay-snapshot": FINGERPRINT[:32],
        "mlrelay-trigger": "schedule",
    }
    assert body["serviceAccount"] == OPTIONS.service_account
    assert body["network"] == OPTIONS.network
    assert body["encryptionSpec"] == {"kmsKeyName": OPTIONS.encryption_key_name}
    assert "templateUri" not in body  # a local file: the spec travels inline
    compiled = yaml.safe_load(PENGUINS_TEMPLATE.read_text())
    assert body["pipelineSpec"]["pipelineInfo"] == compiled["pipelineInfo"]
    assert body["pipelineSpec"]["root"]["inputDefinitions"] == compiled["root"]["inputDefinitions"]
    tasks = [
        task
        for component in [
            body["pipelineSpec"]["root"],
            *body["pipelineSpec"]["components"].values(),
        ]
        for task in component.get("dag", {}).get("tasks", {}).values()
    ]
    assert len(tasks) == 5  # exit handler, reporter, preprocess, train, evaluate
    assert all(task["cachingOptions"] == {"enableCache": True} for task in tasks)

    assert events.types() == ["pipeline.submitted"]  # completion comes from the exit handler
    submitted = events.events[0]
    assert submitted.links["console"] == (
        "https://console.cloud.google.com/vertex-ai/locations/europe-west4/pipelines/runs/"
        f"{RUN_ID}?project=test-proj"
    )


def test_duplicate_deploy_request_creates_no_second_job(
    runtime_on_vertex: LocalRuntime, events: Capture, vertex: FakeVertex
) -> None:
    deploy(runtime_on_vertex)
    deploy(runtime_on_vertex)  # redelivery: the ledger answers, Vertex is not called again
    assert len(vertex.creates()) == 1
    assert events.types() == ["pipeline.submitted"]  # and `submitted` is out: not re-emitted

    runtime_on_vertex.store.delete(keys.ledger(RUN_ID, "pipeline"))  # the ledger record is lost
    deploy(runtime_on_vertex)  # Vertex answers 409 ALREADY_EXISTS: that is success

    assert len(vertex.creates()) == 2
    assert len(vertex.jobs) == 1
    assert events.types() == ["pipeline.submitted"] * 2
    assert [e.details["reused"] for e in events.events] == [False, False]
    record = read_run(runtime_on_vertex.store, RUN_ID)["pipeline"]
    assert (record.result or {})["details"]["already_existed"] is True


def test_already_exists_is_success_and_recorded(
    backend: VertexPipelineBackend, vertex: FakeVertex
) -> None:
    first = start(backend)
    second = start(backend)

    assert first.details["already_existed"] is False
    assert second.details["already_existed"] is True
    assert second.job_name == f"projects/test-proj/locations/europe-west4/pipelineJobs/{RUN_ID}"
    assert len(vertex.jobs) == 1


def test_429_and_503_are_retried_until_the_job_is_created(
    backend: VertexPipelineBackend, vertex: FakeVertex
) -> None:
    vertex.fail_next(429, "Quota exceeded for aiplatform.googleapis.com/pipeline_jobs")
    vertex.fail_next(503, "The service is currently unavailable.")

    outcome = start(backend)

    assert outcome.status == "submitted"
    assert len(vertex.creates()) == 3
    assert len(vertex.jobs) == 1


def test_unavailable_beyond_the_retry_deadline_asks_for_redelivery(
    backend: VertexPipelineBackend, vertex: FakeVertex
) -> None:
    vertex.fail_next(503, "The service is currently unavailable.", times=50)

    with pytest.raises(TransientError, match="did not take"):
        start(backend)
    assert vertex.jobs == {}


def test_refused_job_emits_failed_with_the_service_message(
    runtime_on_vertex: LocalRuntime, events: Capture, vertex: FakeVertex
) -> None:
    vertex.fail_next(400, "Invalid PipelineSpec: pipelineInfo.name must be set.")

    deploy(runtime_on_vertex)

    assert events.types() == ["pipeline.failed"]
    failed = events.events[0]
    assert failed.error is not None
    assert "Invalid PipelineSpec: pipelineInfo.name must be set." in failed.error
    assert failed.details["field"] == "vertex"
    assert len(vertex.creates()) == 1  # permanent: not retried


def start(backend: VertexPipelineBackend) -> Any:
    announced: list[dict[str, str]] = []
    outcome = backend.start(
        run_id=RUN_ID,
        pipeline="penguins",
        template=str(PENGUINS_TEMPLATE),
        parameters={"run_id": RUN_ID, "snapshot_fingerprint": FINGERPRINT},
        labels={"mlrelay-run-id": RUN_ID},
        announce=announced.append,
    )
    assert announced == [outcome.links]
    return outcome


def test_a_missing_template_is_a_configuration_error(
    tmp_path: Path, backend: VertexPipelineBackend
) -> None:
    from mlrelay.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="cannot read"):  # the release, not the message
        backend.start(
            run_id=RUN_ID, pipeline="penguins", template=str(tmp_path / "missing.yaml"),
            parameters={}, labels={}, announce=lambda links: None,
        )  # fmt: skip


def test_a_403_over_rest_is_our_misconfiguration_redelivered_not_a_rejected_run(
    backend: VertexPipelineBackend, vertex: FakeVertex
) -> None:
    # the REST transport raises Forbidden for a 403 (gRPC's PermissionDenied is its subclass):
    # a missing grant must keep the message for redelivery, never fail the run for good
    from mlrelay.errors import ConfigurationError

    vertex.fail_next(403, "Permission 'aiplatform.pipelineJobs.create' denied on resource.")

    with pytest.raises(ConfigurationError, match="403"):
        start(backend)
    assert vertex.jobs == {}
