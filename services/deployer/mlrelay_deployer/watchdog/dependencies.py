"""What a watchdog pass needs, injected: the ports, the clock, and the two steps that talk to
the pipeline service (asking it for a job's state; publishing a final state it reports)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from mlrelay.contracts import utc_now
from mlrelay.ports.container import Ports
from mlrelay.ports.protocols import JobState
from mlrelay.stage.records import StageRecord

AskBackend = Callable[[str, dict[str, StageRecord]], JobState | None]
"""(run id, the run's ledger) -> what the service says of its job now; None: no such job."""

Report = Callable[[str, str, JobState], bool]
"""(run id, pipeline, terminal state) -> True when it published the run's final event."""

LOOKBACK = timedelta(hours=48)  # how far back a schedule's slots are checked, at most


@dataclass(frozen=True)
class WatchdogDeps:
    ports: Ports
    # None: no service to ask (tests of the ledger alone): a submitted run is stuck past
    # max_runtime, and nothing is reported
    ask_backend: AskBackend | None
    report: Report
    now: Callable[[], datetime] = utc_now
    lookback: timedelta = LOOKBACK
    # rejects held runs whose approval timed out; the run ids rejected now
    expire: Callable[[], list[str]] = list
    # asks for `promote` of canaries past their `auto_promote_after`; the run ids asked now
    auto_promote: Callable[[], list[str]] = list
