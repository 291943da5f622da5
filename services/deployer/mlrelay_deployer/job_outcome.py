"""Publish a run's final state as the pipeline service reports it, once per run.

The pipeline's exit handler normally says how a run ended. A job that is cancelled, fails to
start, or is killed before its exit handler runs says nothing; the Vertex log relay
(`mlrelay-job-events`) and the watchdog learn its end from the service instead and call
`report_job_outcome`. Whoever calls first claims `runs/<run_id>/outcome.json` (create-only,
`run_once`) and publishes the one `pipeline.<status>` event inside that claim; a call while it
works is asked to come again (TransientError: redelivered), and every later call (a redelivered
log entry, the watchdog after the relay) finds the finished claim and publishes nothing. Only a
reporter that dies after publishing and before recording publishes twice (its lease runs out
and the next call takes over); the notifier posts the same event once.

A run already settled (the notifier wrote its history summary: the exit handler's report, a
cancel command) publishes nothing at all. Between two reporters of one end the notifier keeps
one Slack state: the first final event settles the run, and the same event twice is one
notification key.
"""

from __future__ import annotations

from typing import Any

import structlog

from mlrelay.contracts import LifecycleEvent
from mlrelay.history import read_summary
from mlrelay.ports.container import Ports
from mlrelay.ports.protocols import JobState
from mlrelay.stage import keys
from mlrelay.stage.ledger import run_once

log = structlog.get_logger()


def outcome_event(
    *, run_id: str, pipeline: str, state: JobState, reported_by: str
) -> LifecycleEvent:
    """The run's one final event, worded like the exit handler's report."""
    status = state.status
    if status == "succeeded":
        summary = f"pipeline {pipeline} succeeded"
    elif status == "cancelled":
        summary = f"pipeline {pipeline} was cancelled"
    elif state.failed_task:
        summary = f"pipeline failed at {state.failed_task}"
    else:
        summary = f"pipeline {pipeline} failed before any task did ({state.state})"
    details: dict[str, Any] = {"reported_by": reported_by, "final_state": state.state}
    if state.failed_task:
        details["failed_task"] = state.failed_task
    if state.ended_at is not None:
        details["ended_at"] = state.ended_at.isoformat()
    figures: dict[str, float | int | str] = {}
    if state.started_at is not None and state.ended_at is not None:
        seconds = (state.ended_at - state.started_at).total_seconds()
        figures["duration_seconds"] = round(max(seconds, 0.0), 1)
    error = None
    if status == "failed":
        error = state.error or f"final state {state.state}"
    return LifecycleEvent(
        run_id=run_id,
        pipeline=pipeline,
        stage="pipeline",
        status=status,  # type: ignore[arg-type]  # terminal: succeeded, failed or cancelled
        summary=summary,
        error=error,
        figures=figures,
        links=dict(state.links),
        details=details,
    )


def report_job_outcome(
    ports: Ports, *, run_id: str, pipeline: str, state: JobState, reported_by: str
) -> bool:
    """Publish the run's final event from what the service says (`state`, terminal); True when
    this call published it. At most once per run however often called; nothing for a run that
    is not over or already settled."""
    if not state.terminal:
        log.info("job_not_over", state=state.state)
        return False
    if read_summary(ports.store, pipeline, run_id) is not None:
        log.info("job_outcome_already_settled", state=state.state, reported_by=reported_by)
        return False

    def work() -> dict[str, Any]:  # published inside the claim: a concurrent call waits
        event = outcome_event(
            run_id=run_id, pipeline=pipeline, state=state, reported_by=reported_by
        )
        ports.publish(event)  # a failed publish releases the claim: the redelivery publishes
        log.info("job_outcome_reported", status=event.status, state=state.state)
        return {"event_type": event.event_type, "reported_by": reported_by}

    outcome = run_once(
        ports.store, keys.job_outcome(run_id), "outcome", work, lease=ports.settings.claim_lease
    )
    if outcome.reused:
        log.info(
            "job_outcome_already_reported",
            reported_by=reported_by,
            first=outcome.result.get("reported_by"),
        )
    return not outcome.reused
