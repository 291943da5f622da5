"""The one place a watchdog pass gets its dependencies from the ports.

`ask_backend` asks the run's pipeline service for its job (`PipelineBackend.job_state`: Vertex AI
GetPipelineJob, a KFP host's `get_run`, the local runner's child); `report` publishes a terminal
answer as the run's final event through the same once-per-run claim as the Vertex log relay
(`mlrelay_deployer.job_outcome`). `expire` rejects held runs whose approval timed out
(`mlrelay_deployer.approvals.expire_held_runs`); `auto_promote` asks for the promotion of
canaries past their `auto_promote_after` (`mlrelay_deployer.promotion.auto_promote`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from mlrelay.contracts import utc_now
from mlrelay.ports.container import Ports
from mlrelay.ports.protocols import JobState
from mlrelay.stage.records import StageRecord
from mlrelay_deployer.approvals import expire_held_runs
from mlrelay_deployer.backends import build_backend
from mlrelay_deployer.job_outcome import report_job_outcome
from mlrelay_deployer.promotion.auto_promote import auto_promote_due
from mlrelay_deployer.watchdog.dependencies import WatchdogDeps


def backend_asker(ports: Ports) -> Callable[[str, dict[str, StageRecord]], JobState | None]:
    def ask(run_id: str, records: dict[str, StageRecord]) -> JobState | None:
        trigger = records.get("trigger")
        pipeline = str((trigger.result or {}).get("pipeline") or "") if trigger else ""
        spec = ports.registry.pipelines.get(pipeline)
        if spec is None:
            return None
        deploy = records.get("pipeline")
        job_name = str((deploy.result or {}).get("job_name") or "") if deploy else ""
        if not job_name and spec.backend == "kfp":
            return None  # a KFP host names its runs itself: none recorded yet
        backend = ports.pipeline_backend(pipeline, lambda p: build_backend(p, spec))
        return backend.job_state(run_id=run_id, job_name=job_name)

    return ask


def watchdog_deps(ports: Ports, now: Callable[[], datetime] = utc_now) -> WatchdogDeps:
    def report(run_id: str, pipeline: str, state: JobState) -> bool:
        return report_job_outcome(
            ports, run_id=run_id, pipeline=pipeline, state=state, reported_by="watchdog"
        )

    return WatchdogDeps(
        ports=ports,
        ask_backend=backend_asker(ports),
        report=report,
        now=now,
        expire=lambda: expire_held_runs(ports, now()),
        auto_promote=lambda: auto_promote_due(ports, now()),
    )
