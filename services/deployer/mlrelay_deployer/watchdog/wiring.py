"""The one place a watchdog pass gets its dependencies from the ports.

`ask_backend` and `report` are the steps that talk to the pipeline service: asking for a run's
job state (`PipelineBackend.job_state`) and publishing a terminal state as the run's final event
through the same claim as the exit-handler reporter (`mlrelay_deployer.job_outcome`). Until those
are wired here, `ask_backend` is None: a submitted run is judged on its ledger alone (stuck once
`max_runtime` has passed since submission) and nothing is reported.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from mlrelay.contracts import utc_now
from mlrelay.ports.container import Ports
from mlrelay.ports.protocols import JobState
from mlrelay_deployer.watchdog.dependencies import WatchdogDeps


def _nothing_reported(run_id: str, pipeline: str, state: JobState) -> bool:
    return False  # never called while ask_backend is None


def watchdog_deps(ports: Ports, now: Callable[[], datetime] = utc_now) -> WatchdogDeps:
    return WatchdogDeps(ports=ports, ask_backend=None, report=_nothing_reported, now=now)
