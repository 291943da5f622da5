"""One `RunCommand` per (run, action, run state): the claim is the ledger's create-only claim
(`commands/<run_id>/<action>-<state>.json`), so the same click delivered twice, Slack's retries
and ten people clicking the same card at once publish one command. The state is a digest of the
run's ledger and history summary: once the run moves on (a new attempt, a new outcome) the same
button asks afresh.

The one way a command is asked for: the Slack door (services/interactions/) and the CLI
(`mlrelay cancel`) both call `find_run` and `request_command`; the consumer (the deployer for
`cancel`) takes its own claim on the same key (`keys.command_done`)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

import structlog

from mlrelay.contracts import CommandAction, CommandSource, RunCommand
from mlrelay.errors import PermanentError, TransientError
from mlrelay.history import read_summary
from mlrelay.ports.container import Ports
from mlrelay.promotion_record import read_promotion
from mlrelay.stage import keys
from mlrelay.stage.ledger import StageRecord, read_run, run_once

log = structlog.get_logger()


CARRIED_OUT: frozenset[str] = frozenset(
    {"retry", "rerun", "cancel", "approve", "reject", "backfill", "promote", "rollback"}
)
"""The actions a consumer carries out (retry, rerun, backfill: the trigger's `mlrelay-attempts`;
cancel, approve, reject: the deployer's `mlrelay-cancel` and `mlrelay-approvals`; promote,
rollback: the deployer's `mlrelay-promotion-commands`); asking for another publishes nothing (a
command nobody reads would be lost)."""


class CommandNotPublished(Exception):
    """The bus did not take the command: the claim is given back, the user may click again."""


@dataclass(frozen=True)
class KnownRun:
    run_id: str
    pipeline: str
    state: str  # 16 hex digits: the run's ledger and outcome as of now


@dataclass(frozen=True)
class CommandOutcome:
    command: RunCommand
    first: bool  # False: already requested (by `requested_by` of the first request)
    requested_by: str


def find_run(ports: Ports, run_id: str) -> KnownRun:
    """The run as the ledger knows it; the pipeline comes from the ledger, never the click."""
    records = read_run(ports.store, run_id)
    trigger = records.get("trigger")
    pipeline = (trigger.result or {}).get("pipeline") if trigger is not None else None
    if not isinstance(pipeline, str):
        raise PermanentError("run_id", f"{run_id!r} is not a run mlrelay knows", "check the id")
    return KnownRun(run_id, pipeline, run_state_digest(ports, run_id, pipeline, records))


def find_slot_to_backfill(ports: Ports, run_id: str, *, now: datetime) -> KnownRun:
    """A missed schedule slot, named by the run id its tick would have made (a Backfill button):
    proved against the registry (mlrelay.schedules.slot_runs), and refused once the slot has a
    run (a second click, or the late tick, got there first)."""
    from mlrelay.schedules.slot_runs import find_slot_run

    slot_run = find_slot_run(ports.registry, run_id, now=now)
    records = read_run(ports.store, run_id)
    if "trigger" in records:
        raise PermanentError(
            "run_id", f"the slot of {run_id!r} has a run already", "see that run's message"
        )
    state = run_state_digest(ports, run_id, slot_run.pipeline, records)
    return KnownRun(run_id, slot_run.pipeline, state)


def run_state_digest(
    ports: Ports, run_id: str, pipeline: str, records: dict[str, StageRecord]
) -> str:
    """16 hex digits of the run's ledger and history summary: changes whenever the run moves
    (its model's promotion too, when it has one: a promote that failed may be asked again)."""
    summary = read_summary(ports.store, pipeline, run_id)
    seen = [
        [name, record.state, record.attempts, record.finished_at]
        for name, record in sorted(records.items())
    ]
    seen.append(["history", summary.status if summary else None, None, None])
    promotion = read_promotion(ports.store, run_id)
    if promotion is not None:  # absent: the digest is what it always was
        traffic = json.dumps(promotion.traffic, sort_keys=True)
        seen.append(["promotion", promotion.state, promotion.error, traffic])
    return hashlib.sha256(json.dumps(seen, default=str).encode()).hexdigest()[:16]


def request_command(
    ports: Ports,
    run: KnownRun,
    action: CommandAction,
    *,
    requested_by: str,
    requested_at: datetime,
    response_url: str | None,
    source: CommandSource = "slack",
) -> CommandOutcome:
    """Publish the command once per (run, action, run state): a Slack click and `mlrelay retry`
    go through here alike (`source`), so the claim is the same whoever asks."""
    command = RunCommand(
        action=action,
        run_id=run.run_id,
        pipeline=run.pipeline,
        requested_by=requested_by,
        requested_at=requested_at,
        source=source,
        action_key=f"{run.run_id}/{action}/{run.state}",
        response_url=response_url,
    )

    def publish() -> dict[str, str]:
        try:
            message_id = ports.publish(command)
        except TransientError as exc:
            raise CommandNotPublished(str(exc)) from exc
        log.info("command_published", action=action, message_id=message_id)
        # who and when: what the run's card shows once the command is carried out
        return {
            "message_id": message_id,
            "requested_by": requested_by,
            "requested_at": requested_at.isoformat(),
        }

    key = keys.command(run.run_id, action, run.state)
    try:
        outcome = run_once(ports.store, key, "command", publish, lease=ports.settings.claim_lease)
    except TransientError:  # another delivery of the same click is publishing it right now
        log.info("command_already_in_progress", action=action)
        return CommandOutcome(command, first=False, requested_by=requested_by)
    if outcome.reused:
        log.info("command_already_requested", action=action)
    first_by = str(outcome.result.get("requested_by") or requested_by)
    return CommandOutcome(command, first=not outcome.reused, requested_by=first_by)
