"""Pipeline backends: where a run's pipeline executes, chosen from the registry in one place."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlrelay.errors import ConfigurationError, PermanentError
from mlrelay.ports.container import Ports
from mlrelay.ports.protocols import JobState, PipelineBackend, PipelineOutcome
from mlrelay.registry import PipelineSpec
from mlrelay.stage import keys
from mlrelay_deployer.template_source import load_template

OUTBOX = "outbox"


class LocalKfpBackend:
    """Kubeflow Pipelines' local runner on this machine, one child process per run.

    The pipeline's completion reporter cannot reach the in-process bus from the child, so it
    writes its LifecycleEvent to `<runs_dir>/<run_id>/outbox/`; the outcome carries it back and
    the deployer publishes it as the run's one `succeeded`/`failed` event.
    """

    def __init__(self, runs_dir: Path) -> None:
        self.runs_dir = runs_dir

    def completion_destination(self, run_id: str) -> str:
        return str(self.runs_dir / run_id / OUTBOX)

    def start(
        self,
        *,
        run_id: str,
        pipeline: str,
        template: str,
        parameters: dict[str, Any],
        labels: dict[str, str],
        announce: Callable[[dict[str, str]], None],
    ) -> PipelineOutcome:
        from mlrelay_deployer.kfp_local import run_local_pipeline

        workdir = self.runs_dir / run_id
        announce({"run_dir": (workdir / "root").as_uri()})
        report = Path(self.completion_destination(run_id)) / f"{run_id}.json"
        report.unlink(missing_ok=True)  # a retried run reports afresh
        local_template = Path(template)
        if "://" in template:  # gs:// or Artifact Registry: run a local copy of the same text
            local_template = workdir / "template.yaml"
            workdir.mkdir(parents=True, exist_ok=True)
            local_template.write_text(load_template(template).text)
        result = run_local_pipeline(local_template, parameters, workdir)
        return PipelineOutcome(
            status=result.status,
            job_name=run_id,
            outputs=result.outputs,
            metrics=result.metrics,
            failed_task=result.failed_task,
            error=result.error,
            links={"run_dir": Path(result.run_dir).as_uri(), "log": Path(result.log_path).as_uri()},
            duration_seconds=result.duration_seconds,
            details={"command": result.cancelled_by} if result.cancelled_by is not None else {},
            completion=read_completion(report),
        )

    def cancel(self, *, run_id: str, job_name: str, requested: dict[str, str]) -> str:
        """Stop the run's child process: `start` then returns `cancelled`, with `requested` as
        its details' `command` (the deploy reports it too, wherever it runs)."""
        from mlrelay_deployer.kfp_local import cancel_local_run

        try:
            return cancel_local_run(self.runs_dir / run_id, requested)
        except LookupError:
            raise PermanentError(
                "run_id",
                f"{run_id} is not running on this machine (its local run has ended)",
                "nothing to cancel; see the run's message for its outcome",
            ) from None

    def job_state(self, *, run_id: str, job_name: str) -> JobState | None:
        """The run's child process: running, its result, or failed when it died without one."""
        from mlrelay_deployer.kfp_local import local_job_state

        return local_job_state(self.runs_dir / run_id)


def read_completion(report: Path) -> dict[str, Any] | None:
    """The completion reporter's `{"data": event, "attributes": ...}` document, if it wrote one."""
    try:
        document = json.loads(report.read_text())
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


def job_output_uri(ports: Ports, run_id: str) -> str:
    """The run's output folder in mlrelay's bucket (`jobs/<run_id>/`) as a URI ending in `/`."""
    uri = ports.store.uri(keys.job_output(run_id))
    return uri if uri.endswith("/") else f"{uri}/"


def build_backend(ports: Ports, spec: PipelineSpec) -> PipelineBackend:
    settings = ports.settings
    lifecycle_topic = f"projects/{settings.project}/topics/{settings.topics.lifecycle}"
    if spec.backend == "vertex" and spec.vertex is not None:
        from mlrelay_deployer.vertex_backend import VertexPipelineBackend

        return VertexPipelineBackend(
            spec.vertex,
            lifecycle_topic,
            endpoint=settings.deployer.vertex_endpoint,
            request_timeout_seconds=settings.http_timeout_seconds,
        )
    if spec.backend == "kfp" and spec.kfp is not None:
        from mlrelay_deployer.kfp_backend import KfpHostBackend

        return KfpHostBackend(
            spec.kfp,
            lifecycle_topic,
            tokens=settings.deployer.kfp_tokens,
            request_timeout_seconds=settings.http_timeout_seconds,
        )
    if spec.backend == "vertex_custom_job" and spec.vertex is not None and spec.job is not None:
        from mlrelay.registry.backends import CustomJobOptions
        from mlrelay_deployer.custom_job_backend import VertexCustomJobBackend

        return VertexCustomJobBackend(
            spec.vertex,
            spec.custom_job or CustomJobOptions(),
            spec.job,
            lambda run_id: job_output_uri(ports, run_id),
            lifecycle_topic,
            endpoint=settings.deployer.vertex_endpoint,
            request_timeout_seconds=settings.http_timeout_seconds,
        )
    if spec.backend == "local":
        return LocalKfpBackend((settings.home / keys.PIPELINE_RUNS).resolve())
    if spec.backend == "local_job" and spec.job is not None:
        from mlrelay_deployer.local_job_backend import LocalJobBackend

        store = ports.store
        return LocalJobBackend(
            (settings.home / keys.PIPELINE_RUNS).resolve(),
            spec.job,
            registry_dir=ports.registry.base_dir.resolve(),
            output_uri=lambda run_id: store.uri(keys.job_output(run_id)),
        )
    raise ConfigurationError(
        spec.backend,
        f"`backend: {spec.backend}` has no `{spec.backend}:` options",
        "add them to the pipeline's registry entry (`mlrelay validate` checks this)",
    )
