"""Deploys on Vertex AI for the deployer's tests: the options of a fully configured pipeline,
the registry with penguins on Vertex AI, a runtime whose deployer and relay reach the loopback
Vertex AI, and a DeployRequest delivered on the local bus."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from google.auth.credentials import AnonymousCredentials
from google.cloud.aiplatform_v1.services.pipeline_service import PipelineServiceClient

from mlrelay.config.settings import Settings
from mlrelay.contracts import DeployRequest, SnapshotRef
from mlrelay.registry import Registry, load_registry
from mlrelay.registry.backends import VertexOptions
from mlrelay_deployer.vertex_backend import VertexPipelineBackend
from mlrelay_tools.local.runtime import LocalRuntime
from tests.fakes.vertex import FakeVertex
from tests.helpers import REGISTRY, RecordingChat, make_runtime

RUN_ID = "penguins-demo-1-0123456789ab"
FINGERPRINT = "f" * 64
OPTIONS = VertexOptions(
    project="test-proj",
    region="europe-west4",
    service_account="mlrelay-pipelines@test-proj.iam.gserviceaccount.com",
    network="projects/123456/global/networks/ml",
    encryption_key_name="projects/test-proj/locations/europe-west4/keyRings/ml/cryptoKeys/runs",
    pipeline_root="gs://mlrelay-test-pipelines/root",
    enable_caching=True,
)


def vertex_registry() -> Registry:
    registry = load_registry(REGISTRY)
    spec = registry.pipelines["penguins"].model_copy(
        update={"backend": "vertex", "vertex": OPTIONS, "promotion": None}
    )  # the backend's own tests; promotion on Vertex AI has its own
    return registry.model_copy(update={"pipelines": {"penguins": spec}})


def vertex_runtime(settings: Settings, channel: RecordingChat, vertex: FakeVertex) -> LocalRuntime:
    """The embedded runtime with penguins on the loopback Vertex AI: the deployer's backend
    through the official client's REST transport, and the log relay's own client at the
    endpoint the settings name (MLRELAY_VERTEX_ENDPOINT)."""
    vertex.reset()
    client = PipelineServiceClient(
        transport="rest",
        client_options={"api_endpoint": vertex.endpoint},
        credentials=AnonymousCredentials(),
    )
    backend = VertexPipelineBackend(
        OPTIONS, "projects/test-proj/topics/mlrelay-lifecycle", client=client,
        retry_deadline_seconds=3.0,
    )  # fmt: skip
    relay_settings = dataclasses.replace(
        settings, env={**settings.env, "MLRELAY_VERTEX_ENDPOINT": vertex.endpoint}
    )
    return make_runtime(
        relay_settings, channel, registry=vertex_registry(), pipeline_backends={"penguins": backend}
    )


def deploy(runtime: LocalRuntime, run_id: str = RUN_ID) -> None:
    now = datetime(2026, 11, 23, 5, tzinfo=UTC)
    request = DeployRequest(
        run_id=run_id,
        pipeline="penguins",
        parameters={"min_year": 2007, "test_fraction": 0.25, "n_estimators": 200, "max_depth": 6,
                    "seed": 42},
        logical_time=now,
        trigger="schedule",
        accepted_at=now,
        snapshot=SnapshotRef(
            manifest_uri=f"gs://mlrelay-test/snapshots/penguins/{run_id}/manifest.json",
            fingerprint=FINGERPRINT, row_count=344, total_bytes=20000, file_count=1,
        ),
    )  # fmt: skip
    runtime.bus.publish(runtime.settings.topics.deploys, request.to_json(), request.attributes())
    runtime.bus.run_until_idle()
