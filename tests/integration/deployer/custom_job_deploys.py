"""Runs on Vertex AI custom training for the deployer's tests: penguins as a
`backend: vertex_custom_job` pipeline (two worker pools, spot, a timeout, the full `vertex:`
options), and a runtime whose deployer, relay and watchdog reach the loopback Vertex AI (or a
FaultProxy in front of it) at the endpoint the settings name, as on Google Cloud."""

from __future__ import annotations

import dataclasses

from mlrelay.config.settings import Settings
from mlrelay.registry import Registry, load_registry
from mlrelay.registry.backends import CustomJobOptions, WorkerPool
from mlrelay.registry.jobs import JobEntry
from mlrelay_tools.local.runtime import LocalRuntime
from tests.helpers import REGISTRY, RecordingChat, make_runtime
from tests.integration.deployer.vertex_deploys import OPTIONS

IMAGE = "europe-docker.pkg.dev/test-proj/ml/penguins-train:1.4"
EVAL_IMAGE = "europe-docker.pkg.dev/test-proj/ml/penguins-eval:1.4"
ENTRY = JobEntry(
    image=IMAGE,
    command=["python", "-m", "penguins.train"],
    args=[
        "--manifest={snapshot_manifest_uri}",
        "--fingerprint={snapshot_fingerprint}",
        "--trees={n_estimators}",
        "--out={output_dir}",
    ],
    env={"PENGUINS_SEED": "{seed}", "PENGUINS_RUN": "{run_id}"},
)
CUSTOM_JOB = CustomJobOptions(
    worker_pools=[
        WorkerPool(
            machine_type="n1-standard-8",
            accelerator_type="NVIDIA_TESLA_T4",
            accelerator_count=1,
            boot_disk_size_gb=200,
        ),
        WorkerPool(
            machine_type="n1-highmem-4",
            replica_count=2,
            boot_disk_type="pd-standard",
            image=EVAL_IMAGE,
            args=["--role=evaluator", "--out={output_dir}"],
        ),
    ],
    spot=True,
    timeout="6h",
    restart_job_on_worker_restart=True,
)


def custom_job_registry() -> Registry:
    registry = load_registry(REGISTRY)
    spec = registry.pipelines["penguins"].model_copy(
        update={
            "backend": "vertex_custom_job",
            "vertex": OPTIONS,
            "template": None,
            "job": ENTRY,
            "custom_job": CUSTOM_JOB,
            "promotion": None,  # the backend's own tests; promotion has its own
        }
    )
    return registry.model_copy(update={"pipelines": {"penguins": spec}})


def custom_job_runtime(settings: Settings, channel: RecordingChat, endpoint: str) -> LocalRuntime:
    """The embedded runtime with penguins on Vertex AI custom training at `endpoint` (the
    loopback Vertex AI, or a FaultProxy in front of it): the deployer builds its backend from
    the registry, as on Google Cloud (`build_backend`)."""
    on_vertex = dataclasses.replace(
        settings, env={**settings.env, "MLRELAY_VERTEX_ENDPOINT": endpoint}
    )
    return make_runtime(on_vertex, channel, registry=custom_job_registry())
