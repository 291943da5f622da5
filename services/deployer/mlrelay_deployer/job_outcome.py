"""Publish a run's final state as the pipeline service reports it, once per run.

The pipeline's exit handler normally says how a run ended. A job that is cancelled, fails to
start, or is killed before its exit handler runs says nothing; the Vertex log relay
(`mlrelay-job-events`) and the watchdog learn its end from the service instead and call
`report_job_outcome`. Whoever calls first claims `runs/<run_id>/outcome.json` (create-only) and
publishes the one `pipeline.<status>` event recorded there; every later call (a redelivered log
entry, the watchdog after the relay) finds the claim and its `outcome.published` marker and
publishes nothing. A run already settled (the notifier wrote its history summary: the exit
handler's report, a cancel command) publishes nothing at all. Between two reporters of the same
end the notifier keeps one Slack state: the first final event settles the run, and the same
event twice is one notification key.
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

    def work() -> dict[str, Any]:
        event = outcome_event(
            run_id=run_id, pipeline=pipeline, state=state, reported_by=reported_by
        )
        return {"event": event.model_dump(mode="json"), "reported_by": reported_by}

    outcome = run_once(
        ports.store, keys.job_outcome(run_id), "outcome", work, lease=ports.settings.claim_lease
    )
    published = keys.job_outcome_published(run_id)
    if outcome.reused and ports.store.read(published) is not None:
        log.info(
            "job_outcome_already_reported",
            reported_by=reported_by,
            first=outcome.result.get("reported_by"),
        )
        return False
    event = LifecycleEvent.model_validate(outcome.result["event"])  # the first reporter's words
    ports.publish(event)
    ports.store.create(published, b"")
    log.info("job_outcome_reported", status=event.status, state=state.state, reused=outcome.reused)
    return True
