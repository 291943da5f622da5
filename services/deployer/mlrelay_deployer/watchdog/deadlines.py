"""Deadlines: a run must finish within `deadline.finish_within` after its slot (its logical
time). The schedule's deadline wins over the pipeline's. Past it, with no final outcome yet, one
`pipeline.deadline_missed` per run (a ledger claim on `watchdog/deadlines/<run_id>.json`, whose
result keeps the deadline: the notifier reads it to say how late a later success was)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import structlog

from mlrelay.contracts import LifecycleEvent
from mlrelay.registry import DeadlineSpec, Registry
from mlrelay.registry.expectations import parse_window
from mlrelay.schedules.members import schedules_of
from mlrelay.stage import keys
from mlrelay.stage.ledger import run_once
from mlrelay.stage.open_runs import OpenRun
from mlrelay_deployer.watchdog.dependencies import WatchdogDeps
from mlrelay_deployer.watchdog.findings import Finding

log = structlog.get_logger()


def deadline_of(registry: Registry, run: OpenRun) -> DeadlineSpec | None:
    """The run's schedule's deadline, else its pipeline's; None: no deadline."""
    spec = registry.pipelines.get(run.pipeline)
    if spec is None:
        return None
    if run.schedule:
        owners = [
            run.pipeline,
            *(
                g
                for g, group in registry.groups.items()
                if any(m.pipeline == run.pipeline for m in group.members)
            ),
        ]
        for owner in owners:
            for schedule in schedules_of(registry, owner):
                if schedule.name == run.schedule and schedule.deadline is not None:
                    return schedule.deadline
    return spec.deadline


def due_at(run: OpenRun, deadline: DeadlineSpec) -> datetime:
    return run.slot + parse_window(deadline.finish_within)


def check_deadline(deps: WatchdogDeps, run: OpenRun) -> Finding | None:
    """One `pipeline.deadline_missed` once the run's deadline has passed unfinished."""
    deadline = deadline_of(deps.ports.registry, run)
    if deadline is None:
        return None
    due = due_at(run, deadline)
    now = deps.now()
    if now <= due:
        return None
    summary = (
        f"{run.pipeline} has not finished {deadline.finish_within} after its slot "
        f"{run.slot:%Y-%m-%d %H:%M} UTC (deadline {due:%H:%M} UTC)"
    )

    def publish() -> dict[str, Any]:
        event = LifecycleEvent(
            run_id=run.run_id,
            pipeline=run.pipeline,
            stage="pipeline",
            status="deadline_missed",
            occurred_at=now,
            summary=summary,
            details={
                "deadline": due.isoformat(),
                "finish_within": deadline.finish_within,
                "logical_time": run.logical_time,
                "reported_by": "watchdog",
            },
        )
        return {"message_id": deps.ports.publish(event), "deadline": due.isoformat()}

    outcome = run_once(
        deps.ports.store,
        keys.deadline_missed(run.run_id),
        "watchdog",
        publish,
        lease=deps.ports.settings.claim_lease,
        now=deps.now,
    )
    if not outcome.reused:
        log.warning("run_deadline_missed", run_id=run.run_id, deadline=due.isoformat())
    return Finding(
        "deadline_missed", run.run_id, run.pipeline, "pipeline", summary, not outcome.reused
    )
