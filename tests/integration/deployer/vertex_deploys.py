"""Deploys on Vertex AI for the deployer's tests: the options of a fully configured pipeline,
the registry with penguins on Vertex AI, and a DeployRequest delivered on the local bus."""

from __future__ import annotations

from datetime import UTC, datetime

from mlrelay.contracts import DeployRequest, SnapshotRef
from mlrelay.registry import Registry, load_registry
from mlrelay.registry.backends import VertexOptions
from mlrelay_tools.local.runtime import LocalRuntime
from tests.helpers import REGISTRY

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
        update={"backend": "vertex", "vertex": OPTIONS}
    )
    return registry.model_copy(update={"pipelines": {"penguins": spec}})


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
