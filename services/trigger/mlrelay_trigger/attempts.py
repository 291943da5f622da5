"""Carry out a `retry` or `rerun` command: a new attempt of the same logical run.

An attempt has the original's pipeline, slot (logical time), parameters and trigger kind, and an
id of its own derived from the original's: `<original>-r<n>`, n = 2, 3, ... (the original is
attempt 1; a retry of an attempt is a further attempt of the same original). The attempts are
kept with the original (`commands/<original>/attempts.json`, compare-and-swap), one per command
`action_key`: the same command delivered three times, or two commands with one key (a click and
`mlrelay retry` in the same run state), make one attempt. The attempt's trigger record names it
(`retry_of`, `attempt`, `command`), and the run that was retried gets one `trigger.retried`
event naming the attempt.

A retry asks for a new snapshot; a rerun sends the deployer the original's snapshot (its
snapshot record must be complete) and takes none.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import structlog

from mlrelay.contracts import (
    DeployRequest,
    LifecycleEvent,
    RunCommand,
    SnapshotRef,
    SnapshotRequest,
    utc_now,
)
from mlrelay.errors import PermanentError, TransientError
from mlrelay.history import read_summary
from mlrelay.logs import bind_run
from mlrelay.ports.container import Ports
from mlrelay.stage import keys
from mlrelay.stage.echoes import pass_on
from mlrelay.stage.envelope import PubsubMessage
from mlrelay.stage.ledger import StageRecord, read_run, run_once
from mlrelay.stage.open_runs import OpenRun, mark_open

log = structlog.get_logger()

RETRYABLE = ("failed", "succeeded_with_regression", "cancelled")
"""Final states a new attempt may follow; a running or succeeded run is not retried."""
ATTEMPT_ACTIONS = ("retry", "rerun")
MAX_RUN_ID = 128


@dataclass(frozen=True)
class Attempt:
    run_id: str
    number: int  # 2 for the first retry: the original is attempt 1
    original: str  # the logical run's first run id
    first: bool  # False: an earlier delivery of this command made it


def attempt_run_id(original: str, number: int) -> str:
    run_id = f"{original}-r{number}"
    if len(run_id) > MAX_RUN_ID:
        raise PermanentError(
            "run_id",
            f"attempt {number} of {original!r} would need an id longer than {MAX_RUN_ID} chars",
            "start a new run with `mlrelay run` instead",
        )
    return run_id


def run_state(ports: Ports, run_id: str, records: dict[str, StageRecord], pipeline: str) -> str:
    """The run's outcome as the notifier recorded it, else `failed` when a stage failed, else the
    pipeline's reported end, else `running` (accepted, snapshotting or in the pipeline)."""
    summary = read_summary(ports.store, pipeline, run_id)
    if summary is not None:
        return summary.status
    if any(record.state == "failed" for record in records.values()):
        return "failed"
    deploy = records.get("pipeline")
    status = (deploy.result or {}).get("status") if deploy is not None else None
    return str(status) if status in ("failed", "cancelled", "succeeded") else "running"


def trigger_record(records: dict[str, StageRecord], run_id: str) -> dict[str, Any]:
    trigger = records.get("trigger")
    if trigger is None or trigger.state != "done" or not trigger.result:
        raise PermanentError("run_id", f"{run_id!r} is not a run mlrelay knows", "check the id")
    return trigger.result


def original_snapshot(records: dict[str, StageRecord], run_id: str) -> SnapshotRef:
    """The snapshot a rerun reuses: the run's own, complete."""
    snapshot = records.get("snapshot")
    if snapshot is None or snapshot.state != "done" or not snapshot.result:
        state = snapshot.state if snapshot is not None else "never taken"
        raise PermanentError(
            "action",
            f"{run_id!r} has no complete snapshot to rerun on (its snapshot: {state})",
            "retry it instead: a retry takes a new snapshot",
        )
    result = snapshot.result
    return SnapshotRef(**{name: result[name] for name in SnapshotRef.model_fields})


def allot_attempt(ports: Ports, original: str, command: RunCommand) -> Attempt:
    """The attempt this command makes: the one recorded for its `action_key`, or the next."""
    key = keys.attempts(original)
    store = ports.store
    for _ in range(10):
        found = store.read_versioned(key)
        record: dict[str, Any] = (
            json.loads(found[0]) if found else {"original": original, "attempts": []}
        )
        for made in record["attempts"]:
            if made["action_key"] == command.action_key:
                return Attempt(made["run_id"], made["attempt"], original, first=False)
        number = len(record["attempts"]) + 2
        run_id = attempt_run_id(original, number)
        record["attempts"].append(
            {
                "attempt": number,
                "run_id": run_id,
                "of": command.run_id,
                "action": command.action,
                "action_key": command.action_key,
                "requested_by": command.requested_by,
                "requested_at": command.requested_at.isoformat(),
                "source": command.source,
            }
        )
        data = json.dumps(record, indent=2).encode()
        made_now = store.create(key, data) if found is None else store.replace(key, data, found[1])
        if made_now:
            return Attempt(run_id, number, original, first=True)
    raise TransientError(f"{key}: too many concurrent commands; retry")


def carry_out_command(command: RunCommand, message: PubsubMessage, ports: Ports) -> None:
    """`retry` / `rerun` -> one new attempt (its `accepted` event and its request); `backfill`
    -> the missed slot's run (mlrelay_trigger.backfill); other actions are not the trigger's
    (its subscription filters them out)."""
    if command.action == "backfill":  # a missed slot's run, not a new attempt of a run
        from mlrelay_trigger.backfill import backfill_slot

        backfill_slot(command, message, ports)
        return
    if command.action not in ATTEMPT_ACTIONS:
        log.info("command_not_for_the_trigger", action=command.action)
        return
    records = read_run(ports.store, command.run_id)
    asked = trigger_record(records, command.run_id)
    pipeline = str(asked["pipeline"])
    state = run_state(ports, command.run_id, records, pipeline)
    if state not in RETRYABLE:
        raise PermanentError(
            "run_id",
            f"{command.run_id!r} is {state}: only a run that ended {', '.join(RETRYABLE)} can "
            f"be given a new attempt",
            "wait for the run to end, or start a new run with `mlrelay run`",
        )
    snapshot = original_snapshot(records, command.run_id) if command.action == "rerun" else None
    original = str(asked.get("retry_of") or command.run_id)
    attempt = allot_attempt(ports, original, command)
    with bind_run(run_id=attempt.run_id, pipeline=pipeline):
        start_attempt(command, message, ports, asked, attempt, snapshot)


def start_attempt(
    command: RunCommand,
    message: PubsubMessage,
    ports: Ports,
    asked: dict[str, Any],
    attempt: Attempt,
    snapshot: SnapshotRef | None,
) -> None:
    said = {
        "action": command.action,
        "requested_by": command.requested_by,
        "requested_at": command.requested_at.isoformat(),
        "source": command.source,
    }

    def accept() -> dict[str, Any]:
        accepted_at = utc_now().isoformat()
        # an attempt is a run like any other: the watchdog watches it until the notifier settles it
        mark_open(
            ports.store,
            OpenRun(
                attempt.run_id,
                str(asked["pipeline"]),
                str(asked["logical_time"]),
                accepted_at,
                str(asked["trigger"]),
                asked.get("schedule"),
            ),
        )
        return {
            **asked,
            "run_id": attempt.run_id,
            "requested_by": command.requested_by,
            "accepted_at": accepted_at,
            "message_id": message.message_id,
            "retry_of": attempt.original,
            "attempt": attempt.number,
            "command": {**said, "run_id": command.run_id, "action_key": command.action_key},
        }

    outcome = run_once(
        ports.store,
        keys.ledger(attempt.run_id, "trigger"),
        "trigger",
        accept,
        lease=ports.settings.claim_lease,
    )
    recorded = outcome.result
    pipeline = str(recorded["pipeline"])
    announce_retried(ports, command, attempt, said)
    common: dict[str, Any] = {
        "run_id": attempt.run_id,
        "pipeline": pipeline,
        "parameters": recorded["parameters"],
        "logical_time": recorded["logical_time"],
        "trigger": recorded["trigger"],
        "requested_by": recorded["requested_by"],
        "accepted_at": recorded["accepted_at"],
    }
    request: SnapshotRequest | DeployRequest
    next_stage: keys.LedgerStage
    if snapshot is None:
        request, next_stage = SnapshotRequest(**common), "snapshot"
    else:
        request, next_stage = DeployRequest(**common, snapshot=snapshot), "pipeline"
    how = "on the same snapshot" if snapshot is not None else "with a new snapshot"
    pass_on(
        ports,
        outcome,
        LifecycleEvent(
            run_id=attempt.run_id,
            pipeline=pipeline,
            stage="trigger",
            status="accepted",
            summary=f"attempt {attempt.number} of {attempt.original} accepted ({how})",
            trigger=recorded["trigger"],
            parameters=recorded["parameters"],
            details={
                "logical_time": recorded["logical_time"],
                "requested_by": recorded["requested_by"],
                "reused": outcome.reused,
                "retry_of": attempt.original,
                "attempt": attempt.number,
                "command": said,
            },
        ),
        request,
        next_stage,
    )
    log.info(
        "attempt_started",
        attempt=attempt.number,
        retry_of=attempt.original,
        action=command.action,
        reused=outcome.reused,
    )


def announce_retried(
    ports: Ports, command: RunCommand, attempt: Attempt, said: dict[str, str]
) -> None:
    """One `trigger.retried` on the run the command named, per attempt (the notifier keeps it to
    one post: `notifications/<run>/trigger.retried-<attempt>.json`);
    a redelivery publishes it again only while the notifier has not taken it."""
    event = LifecycleEvent(
        run_id=command.run_id,
        pipeline=command.pipeline,
        stage="trigger",
        status="retried",
        summary=(
            f"{command.action} requested by {command.requested_by} at "
            f"{command.requested_at.isoformat(timespec='seconds')} -> attempt {attempt.run_id}"
        ),
        details={"command": said, "attempt_run_id": attempt.run_id},
    )
    heard = keys.notification(command.run_id, f"{event.event_type}-{attempt.run_id}")
    if ports.store.read(heard) is not None:
        log.info("echo_skipped", event_type=event.event_type, why="notifier has it")
        return
    ports.publish(event)
