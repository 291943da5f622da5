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

A job backend's run (`vertex_custom_job`) has no exit handler, so every end of it comes from
here, success included: a success then carries what the job left in its output folder (the
metrics of `jobs/<run_id>/metrics.json` as the event's figures, which the gates judge) and the
outputs its deploy recorded (`{"model": <output_dir>model/}`).

A run already settled (the notifier wrote its history summary: the exit handler's report, a
cancel command) publishes nothing at all. Between two reporters of one end the notifier keeps
one Slack state: the first final event settles the run, and the same event twice is one
notification key.
"""

from __future__ import annotations

import json
import math
from typing import Any

import structlog

from mlrelay.contracts import LifecycleEvent
from mlrelay.history import read_summary
from mlrelay.ports.container import Ports
from mlrelay.ports.protocols import JobState, ObjectStore
from mlrelay.registry.jobs import METRICS_FILE
from mlrelay.registry.specs import JOB_BACKENDS
from mlrelay.stage import keys
from mlrelay.stage.ledger import read_run, run_once

log = structlog.get_logger()


def job_metrics(store: ObjectStore, run_id: str) -> dict[str, float]:
    """The numbers of `jobs/<run_id>/metrics.json` (the job contract: one flat JSON object of
    numbers); anything else in it is left out with a warning, a missing file is no metrics."""
    raw = store.read(f"{keys.job_output(run_id)}{METRICS_FILE}")
    if raw is None:
        log.warning("job_metrics_missing", file=METRICS_FILE)
        return {}
    try:
        found = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        log.warning("job_metrics_unreadable", file=METRICS_FILE)
        return {}
    if not isinstance(found, dict):
        log.warning("job_metrics_unreadable", file=METRICS_FILE, why="not a JSON object")
        return {}
    metrics = {
        str(name): float(value)
        for name, value in found.items()
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    }
    if len(metrics) != len(found):
        log.warning("job_metrics_skipped", names=sorted(set(found) - set(metrics)))
    return metrics


def job_results(ports: Ports, run_id: str) -> tuple[dict[str, float], dict[str, str]]:
    """(metrics, outputs) of a job backend's run; ({}, {}) for a pipeline backend's, whose exit
    handler reports its own."""
    deploy = read_run(ports.store, run_id).get("pipeline")
    result = (deploy.result if deploy else None) or {}
    if result.get("backend") not in JOB_BACKENDS:
        return {}, {}
    outputs = {str(k): str(v) for k, v in (result.get("outputs") or {}).items()}
    return job_metrics(ports.store, run_id), outputs


def outcome_event(
    *,
    run_id: str,
    pipeline: str,
    state: JobState,
    reported_by: str,
    metrics: dict[str, float] | None = None,
    outputs: dict[str, str] | None = None,
) -> LifecycleEvent:
    """The run's one final event, worded like the exit handler's report; a success carries
    `metrics` as figures and `outputs` in its details (a job backend's, see the module)."""
    status = state.status
    if status == "succeeded":
        summary = f"pipeline {pipeline} succeeded"
    elif status == "cancelled":
        summary = f"pipeline {pipeline} was cancelled"
    elif state.failed_task:
        summary = f"pipeline failed at {state.failed_task}"
    elif state.state.startswith("JOB_STATE_"):  # a custom job: no tasks, one container
        summary = f"the job of {pipeline} failed ({state.state})"
    else:
        summary = f"pipeline {pipeline} failed before any task did ({state.state})"
    details: dict[str, Any] = {"reported_by": reported_by, "final_state": state.state}
    if state.failed_task:
        details["failed_task"] = state.failed_task
    if state.ended_at is not None:
        details["ended_at"] = state.ended_at.isoformat()
    figures: dict[str, float | int | str] = {}
    if status == "succeeded":
        figures.update(metrics or {})
        if outputs:
            details["outputs"] = dict(outputs)
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
        metrics, outputs = job_results(ports, run_id) if state.status == "succeeded" else ({}, {})
        event = outcome_event(
            run_id=run_id,
            pipeline=pipeline,
            state=state,
            reported_by=reported_by,
            metrics=metrics,
            outputs=outputs,
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
