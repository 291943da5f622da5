"""Pipeline backends: where a run's pipeline executes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlrelay.errors import PermanentError
from mlrelay.ports import PipelineBackend, PipelineOutcome
from mlrelay.wiring import Ports


class LocalKfpBackend:
    """Kubeflow Pipelines' local runner on this machine, one child process per run."""

    def __init__(self, runs_dir: Path) -> None:
        self.runs_dir = runs_dir

    def start(
        self, *, run_id: str, pipeline: str, template: str, parameters: dict[str, Any]
    ) -> PipelineOutcome:
        from mlrelay_deployer.kfp_local import run_local_pipeline

        result = run_local_pipeline(Path(template), parameters, self.runs_dir / run_id)
        return PipelineOutcome(
            status=result.status,
            job_name=run_id,
            outputs=result.outputs,
            metrics=result.metrics,
            failed_task=result.failed_task,
            error=result.error,
            links={"run_dir": Path(result.run_dir).as_uri(), "log": Path(result.log_path).as_uri()},
            duration_seconds=result.duration_seconds,
        )


def build_backend(ports: Ports, backend: str) -> PipelineBackend:
    if backend == "local":
        return LocalKfpBackend((ports.settings.home / "pipeline-runs").resolve())
    raise PermanentError(
        "backend",
        f"the {backend!r} pipeline backend is not built yet (tracked in issue 3)",
        "use `backend: local` in the registry until it lands",
    )
