"""Carry out a `backfill` command (a missed slot's Backfill button): the run that slot's tick
would have made, through the trigger's normal accept.

The command names the slot by the run id its tick would have had; the slot, its schedule and
its members are proved against the registry (mlrelay.schedules.slot_runs), and the request is
the schedule's own tick with the slot given (trigger `backfill`). The run id is therefore the
slot's deterministic one: the command delivered three times, a second click, or the real tick
arriving late all land on the same ledger claim, and one run is made.

The consumer's claim `commands/<run_id>/backfill-<state>.done.json` wraps the accept: the same
command published again answers from it, and it records who asked and the runs made, which is
what the notifier reads to show the button as used.
"""

from __future__ import annotations

from typing import Any

import structlog

from mlrelay.contracts import RunCommand
from mlrelay.errors import PermanentError
from mlrelay.ports.container import Ports
from mlrelay.schedules.slot_runs import find_slot_run
from mlrelay.stage import keys
from mlrelay.stage.envelope import PubsubMessage
from mlrelay.stage.ledger import run_once
from mlrelay_trigger.accept import accept_run_request

log = structlog.get_logger()


def backfill_slot(command: RunCommand, message: PubsubMessage, ports: Ports) -> list[str]:
    """Accept the slot's run (every member of its schedule for that slot); the run ids made."""
    slot_run = find_slot_run(ports.registry, command.run_id, now=command.requested_at)
    if slot_run.pipeline != command.pipeline:
        raise PermanentError(
            "pipeline",
            f"{command.run_id!r} is a slot of {slot_run.pipeline}, not of {command.pipeline}",
            "send the command the door made, unchanged",
        )
    request = slot_run.backfill_request(command.requested_by)
    state = command.action_key.rsplit("/", 1)[1]

    def work() -> dict[str, Any]:
        # accept's own claim per run id makes the slot's run once; this claim makes the same
        # command, published again, answer from its record instead of asking accept afresh
        accepted = accept_run_request(request, message, ports)
        return {
            "action": command.action,
            "requested_by": command.requested_by,
            "requested_at": command.requested_at.isoformat(),
            "source": command.source,
            "slot": slot_run.slot.isoformat(),
            "schedule": slot_run.schedule.name,
            "run_ids": [acceptance.run_id for acceptance in accepted],
        }

    outcome = run_once(
        ports.store,
        keys.command_done(command.run_id, "backfill", state),
        "backfill",
        work,
        lease=ports.settings.claim_lease,
    )
    if outcome.record.state == "failed":  # refused: the same command is refused the same way
        field = outcome.record.error_field or "run_id"
        said = (outcome.record.error or "the backfill was refused").removeprefix(f"{field}: ")
        raise PermanentError(field, said)
    run_ids = [str(run_id) for run_id in outcome.result.get("run_ids", [])]
    log.info(
        "slot_backfilled",
        slot=slot_run.slot.isoformat(),
        schedule=slot_run.schedule.name,
        runs=len(run_ids),
        reused=outcome.reused,
    )
    return run_ids
