"""`job_state` on a KFP host: the real `kfp.Client`'s get_run against the loopback v2beta1 API
(tests/fakes/kfp.py), for the run the deployer started; and on Vertex AI, GetPipelineJob through
the official client against the loopback PipelineService (tests/fakes/vertex.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from mlrelay.config.settings import Settings
from mlrelay.ports.container import use_ports
from mlrelay.stage.ledger import read_run
from mlrelay_deployer.kfp_backend import KfpHostBackend
from mlrelay_deployer.vertex_backend import VertexPipelineBackend
from mlrelay_tools.local.runtime import LocalRuntime
from tests.fakes.kfp import FakeKfp
from tests.fakes.vertex import KILLED, FakeVertex
from tests.helpers import RecordingChat, make_runtime
from tests.integration.deployer.cancel_commands import known_run
from tests.integration.deployer.test_cancel_kfp import kfp_registry
from tests.integration.deployer.vertex_deploys import RUN_ID, deploy

JOB = f"projects/test-proj/locations/europe-west4/pipelineJobs/{RUN_ID}"


@pytest.fixture
def kfp_host() -> Iterator[FakeKfp]:
    with FakeKfp() as fake:
        yield fake


@pytest.fixture
def on_kfp(
    settings: Settings, channel: RecordingChat, kfp_host: FakeKfp
) -> Iterator[tuple[LocalRuntime, KfpHostBackend]]:
    registry = kfp_registry(kfp_host.host)
    backend = KfpHostBackend(
        registry.pipelines["penguins"].kfp,  # type: ignore[arg-type]
        "projects/test-proj/topics/mlrelay-lifecycle",
        backoff_seconds=0.01,
    )
    runtime = make_runtime(
        settings, channel, registry=registry, pipeline_backends={"penguins": backend}
    )
    known_run(runtime, RUN_ID)
    deploy(runtime)
    yield runtime, backend
    use_ports(None)


def test_kfp_job_state_follows_the_run_to_its_failed_task(
    on_kfp: tuple[LocalRuntime, KfpHostBackend], kfp_host: FakeKfp
) -> None:
    runtime, backend = on_kfp
    job_name = str(read_run(runtime.store, RUN_ID)["pipeline"].result["job_name"])  # type: ignore[index]

    pending = backend.job_state(run_id=RUN_ID, job_name=job_name)
    assert pending is not None and (pending.status, pending.terminal) == ("pending", False)

    run = kfp_host.runs[job_name]
    run.update(
        state="FAILED",
        finished_at="2026-11-25T06:30:00Z",
        error={"code": 9, "message": "the DAG failed"},
        run_details={"task_details": [
            {"run_id": job_name, "task_id": "t1", "display_name": "root", "state": "FAILED"},
            {"run_id": job_name, "task_id": "t2", "parent_task_id": "t1", "display_name": "train",
             "state": "FAILED", "error": {"code": 9, "message": "OOMKilled"}},
        ]},
    )  # fmt: skip
    ended = backend.job_state(run_id=RUN_ID, job_name=job_name)

    assert ended is not None and ended.terminal
    assert (ended.state, ended.status, ended.failed_task) == ("FAILED", "failed", "train")
    assert ended.error == "the DAG failed"
    assert ended.ended_at == datetime(2026, 11, 25, 6, 30, tzinfo=UTC)
    assert ended.links["kfp"].endswith(f"/#/runs/details/{job_name}")
    assert backend.job_state(run_id=RUN_ID, job_name="no-such-run") is None


def test_vertex_job_state_reads_the_job_with_get_pipeline_job() -> None:
    with FakeVertex() as vertex:
        from tests.integration.deployer.vertex_deploys import OPTIONS

        backend = VertexPipelineBackend(OPTIONS, "projects/test-proj/topics/t",
                                        endpoint=vertex.endpoint)  # fmt: skip
        assert backend.job_state(run_id=RUN_ID, job_name=JOB) is None
        vertex.add_job(JOB, labels={"mlrelay-run-id": RUN_ID})
        running = backend.job_state(run_id=RUN_ID, job_name="")  # derived from the run id
        assert running is not None and running.status == "running"

        vertex.end_job(JOB, "task_killed")
        ended = backend.job_state(run_id=RUN_ID, job_name=JOB)

    assert ended is not None
    assert (ended.status, ended.failed_task, ended.error) == ("failed", "train", KILLED)
    gets = [r.path for r in vertex.requests if r.method == "GET"]
    assert gets == [f"/v1/{JOB}"] * 3
