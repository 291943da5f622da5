"""Runs without a final event: where each open run stands, and when it counts as stuck.

A run is judged from its ledger (and, once submitted, from what the pipeline service says):

- accepted, no snapshot started `max_pending` after acceptance -> `snapshot.stuck`;
- a snapshot still running `max_runtime` after it started -> `snapshot.stuck`;
- snapshotted, not submitted `max_pending` after the snapshot -> `pipeline.stuck`;
- submitted, and the service says pending past `max_pending`, running past `max_runtime`, or
  knows no such job past `max_pending` -> `pipeline.stuck`; a terminal answer is reported as the
  run's final state instead.

Each `<stage>.stuck` is published once per run and stage (a ledger claim on
`watchdog/stuck/<run_id>/<stage>.json`), however many passes see it; with `on_stuck: cancel` the
same claim asks `mlrelay-cancel` to stop a submitted job (a `cancel` RunCommand, source
`watchdog`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog

from mlrelay.contracts import LifecycleEvent
from mlrelay.ports.protocols import JobState
from mlrelay.registry import WatchSpec
from mlrelay.registry.expectations import parse_window
from mlrelay.registry.specs import JOB_BACKENDS
from mlrelay.stage import keys
from mlrelay.stage.commands import CommandNotPublished, find_run, request_command
from mlrelay.stage.ledger import run_once
from mlrelay.stage.open_runs import OpenRun
from mlrelay.stage.records import StageRecord
from mlrelay_deployer.watchdog.dependencies import AskBackend, WatchdogDeps
from mlrelay_deployer.watchdog.findings import Finding

log = structlog.get_logger()

# how long after a job's end the watchdog leaves it to the job's own reporters (the exit handler,
# the Vertex log relay) before it reports the end itself
REPORT_GRACE = timedelta(minutes=10)
# a job backend's run (`vertex_custom_job`) has no exit handler: the watchdog's report is the
# relay's own (the same metrics from the run's folder), so it reports the end as soon as it sees it
JOB_BACKEND_GRACE = timedelta(0)


@dataclass(frozen=True)
class Stall:
    stage: str  # the stage the run waits on: snapshot or pipeline
    since: datetime  # when the wait began
    limit: str  # the registry's window it passed (e.g. "30m")
    why: str  # what the run is doing, in words
    submitted: bool  # a job exists (so `on_stuck: cancel` can stop it)
    job_state: str | None = None


def _when(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _past(since: datetime | None, window: str, now: datetime) -> bool:
    return since is not None and now - since > parse_window(window)


def judge_run(
    run: OpenRun,
    records: dict[str, StageRecord],
    watch: WatchSpec,
    now: datetime,
    ask_backend: AskBackend | None,
) -> Stall | JobState | None:
    """A Stall, a terminal JobState the service reported, or None (the run is fine for now)."""
    trigger, snapshot, deploy = (records.get(s) for s in ("trigger", "snapshot", "pipeline"))
    if trigger is None or trigger.state != "done":
        return None  # the trigger is still accepting it
    if snapshot is None:
        accepted = _when((trigger.result or {}).get("accepted_at")) or _when(run.accepted_at)
        if _past(accepted, watch.max_pending, now):
            assert accepted is not None
            return Stall(
                "snapshot", accepted, watch.max_pending, "accepted, never snapshotted", False
            )
        return None
    if snapshot.state == "running":
        started = _when(snapshot.started_at)
        if _past(started, watch.max_runtime, now):
            assert started is not None
            return Stall("snapshot", started, watch.max_runtime, "snapshot still running", False)
        return None
    if snapshot.state == "failed":
        return None  # its `snapshot.failed` event settles the run
    if deploy is None and "approval" in records:
        return None  # held for approval: its approval_timeout ends the wait, not the watchdog
    if deploy is not None and deploy.state == "running" and ask_backend is not None:
        # the local runner records its run as running until it ends; a create in flight on
        # Vertex AI may have made the job already: what the service says comes first
        asked = ask_backend(run.run_id, records)
        if asked is not None:
            return _judge_job(asked, _when(deploy.started_at), watch, now, _grace(deploy))
    if deploy is None or deploy.state == "running":
        since = _when(snapshot.finished_at) if deploy is None else _when(deploy.started_at)
        if _past(since, watch.max_pending, now):
            assert since is not None
            why = "snapshotted, never submitted" if deploy is None else "submission never finished"
            return Stall("pipeline", since, watch.max_pending, why, False)
        return None
    result = deploy.result or {}
    if deploy.state == "failed" or result.get("status") != "submitted":
        return None  # a final record: its event settles the run
    return _judge_submitted(run, records, deploy, watch, now, ask_backend)


def _judge_submitted(
    run: OpenRun,
    records: dict[str, StageRecord],
    deploy: StageRecord,
    watch: WatchSpec,
    now: datetime,
    ask_backend: AskBackend | None,
) -> Stall | JobState | None:
    submitted = _when(deploy.finished_at) or _when(deploy.started_at)
    if ask_backend is None:  # not wired to the service: the ledger alone
        if _past(submitted, watch.max_runtime, now):
            assert submitted is not None
            return Stall("pipeline", submitted, watch.max_runtime, "submitted, no outcome", True)
        return None
    state = ask_backend(run.run_id, records)
    if state is None:
        if _past(submitted, watch.max_pending, now):
            assert submitted is not None
            why = "submitted, but the pipeline service has no such job"
            return Stall("pipeline", submitted, watch.max_pending, why, False)
        return None
    return _judge_job(state, submitted, watch, now, _grace(deploy))


def _grace(deploy: StageRecord) -> timedelta:
    backend = (deploy.result or {}).get("backend")
    return JOB_BACKEND_GRACE if backend in JOB_BACKENDS else REPORT_GRACE


def _judge_job(
    state: JobState,
    submitted: datetime | None,
    watch: WatchSpec,
    now: datetime,
    grace: timedelta = REPORT_GRACE,
) -> Stall | JobState | None:
    """What the service's answer makes of a run: its outcome when the job ended (and its own
    reporters had REPORT_GRACE to say so first: the exit handler's report carries the metrics),
    a Stall past the pipeline's windows, else None."""
    if state.terminal:
        ended = state.ended_at
        if ended is not None and now - ended < grace:
            return None  # the exit handler or the log relay is about to say it, with more
        return state
    if state.status == "pending":
        if _past(submitted, watch.max_pending, now):
            assert submitted is not None
            why = f"the job is still pending ({state.state})"
            return Stall("pipeline", submitted, watch.max_pending, why, True, state.state)
        return None
    started = state.started_at or submitted
    if _past(started, watch.max_runtime, now):
        assert started is not None
        why = f"the job is still running ({state.state})"
        return Stall("pipeline", started, watch.max_runtime, why, True, state.state)
    return None


def announce_stuck(
    deps: WatchdogDeps, run: OpenRun, stall: Stall, watch: WatchSpec
) -> list[Finding]:
    """`<stage>.stuck` once per run and stage; with `on_stuck: cancel`, a cancel command too."""
    ports = deps.ports
    now = deps.now()
    cancel = watch.on_stuck == "cancel" and stall.submitted
    waited = now - stall.since
    summary = (
        f"{run.pipeline} looks stuck at {stall.stage}: {stall.why} for "
        f"{_minutes(waited)} (limit {stall.limit})"
    )

    def publish() -> dict[str, Any]:
        details: dict[str, Any] = {
            "reason": stall.why,
            "since": stall.since.isoformat(),
            "limit": stall.limit,
            "on_stuck": watch.on_stuck,
            "logical_time": run.logical_time,
            "reported_by": "watchdog",
        }
        if stall.job_state:
            details["job_state"] = stall.job_state
        event = LifecycleEvent(
            run_id=run.run_id,
            pipeline=run.pipeline,
            stage="pipeline" if stall.stage == "pipeline" else "snapshot",
            status="stuck",
            occurred_at=now,
            summary=summary,
            trigger=run.trigger if run.trigger in ("manual", "schedule", "backfill") else None,  # type: ignore[arg-type]
            details=details,
        )
        message_id = ports.publish(event)
        cancel_asked = False
        if cancel:
            cancel_asked = _ask_cancel(deps, run.run_id, now)
        return {"message_id": message_id, "cancel_requested": cancel_asked}

    outcome = run_once(
        ports.store,
        keys.stuck(run.run_id, stall.stage),
        "watchdog",
        publish,
        lease=ports.settings.claim_lease,
        now=deps.now,
    )
    first = not outcome.reused
    if first:
        log.warning("run_stuck", run_id=run.run_id, stage=stall.stage, why=stall.why)
    found = [Finding("stuck", run.run_id, run.pipeline, stall.stage, summary, first)]
    if outcome.result.get("cancel_requested"):
        found.append(
            Finding(
                "cancel_requested",
                run.run_id,
                run.pipeline,
                stall.stage,
                "asked mlrelay-cancel to stop the job (on_stuck: cancel)",
                first,
            )
        )
    return found


def _ask_cancel(deps: WatchdogDeps, run_id: str, now: datetime) -> bool:
    ports = deps.ports
    try:
        request_command(
            ports,
            find_run(ports, run_id),
            "cancel",
            requested_by="watchdog",
            requested_at=now,
            response_url=None,
            source="watchdog",
        )
    except CommandNotPublished as exc:
        from mlrelay.errors import TransientError

        raise TransientError(f"the cancel command of {run_id} was not published: {exc}") from exc
    return True


def _minutes(waited: timedelta) -> str:
    minutes = int(waited.total_seconds() // 60)
    return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h {minutes % 60} min"
