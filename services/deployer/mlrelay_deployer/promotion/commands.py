"""Carry out `promote` / `rollback` RunCommands on a run's canary.

The consumer's claim is `commands/<run_id>/<action>-<state>.done.json` (like cancel and the
approvals): inside it the canary's one decision is claimed (decisions.decide). The first
decision wins: the same decision again (a second click, a redelivery, the CLI after the
button) is success with no second change; the other decision after one was taken is refused
with a PermanentError naming it ("promoted at … by …") and the fix. Then the decision is
carried out (again, idempotently) and its event published once.
"""

from __future__ import annotations

from typing import Any

import structlog

from mlrelay.contracts import RunCommand
from mlrelay.errors import PermanentError
from mlrelay.ports.container import Ports
from mlrelay.promotion_record import PromotionRecord, read_promotion
from mlrelay.stage import keys
from mlrelay.stage.envelope import PubsubMessage
from mlrelay.stage.ledger import run_once
from mlrelay_deployer.cancel import command_state
from mlrelay_deployer.promotion.decisions import Choice, carry_out, decide, read_decision
from mlrelay_deployer.promotion.records import is_first

log = structlog.get_logger()

DONE = {"promote": "promoted", "rollback": "rolled back"}
FIX = {
    "promote": "run the pipeline again for a new canary",
    "rollback": (
        "the models it replaced are undeployed; run the pipeline again, or promote a newer canary"
    ),
}


def command_record(command: RunCommand) -> dict[str, str]:
    return {
        "action": command.action,
        "requested_by": command.requested_by,
        "requested_at": command.requested_at.isoformat(),
        "source": command.source,
    }


def refuse_other(run_id: str, choice: Choice, decided: dict[str, Any]) -> PermanentError:
    taken = "promote" if decided.get("decision") == "promote" else "rollback"
    by = dict(decided.get("command") or {}).get("requested_by", "someone")
    return PermanentError(
        "run_id",
        f"{run_id} was {DONE[taken]} at {decided.get('decided_at', '?')} by {by}; "
        f"it cannot be {DONE[choice]} now",
        FIX[choice],
    )


def decision_for_command(ports: Ports, command: RunCommand) -> dict[str, Any]:
    """The canary's decision after this command; PermanentError naming the state when the run
    has no canary to decide (or another decision was taken)."""
    choice: Choice = "promote" if command.action == "promote" else "rollback"
    run_id = command.run_id
    record = read_promotion(ports.store, run_id)
    if record is None or record.pipeline != command.pipeline:
        raise PermanentError(
            "run_id",
            f"{run_id} has no model on an endpoint (its pipeline has no `promotion:`, or the "
            "run has not succeeded)",
            "promote or roll back a run whose card shows a canary",
        )
    if record.state == "deploying":
        raise PermanentError(
            "run_id",
            f"{run_id}'s model is being deployed right now",
            "ask again once its promotion.canary is announced",
        )
    if record.state == "failed":
        raise PermanentError(
            "run_id", f"{run_id}'s promotion failed: {record.error}", "see the run's card"
        )
    if record.state == "promoted" and is_first(record):
        if choice == "promote":
            return {"decision": "promote", "first": True}
        raise PermanentError(
            "run_id",
            f"{run_id}'s model was the first on {record.endpoint}: there is no split to go back to",
            "promote a newer run's canary instead",
        )
    decided = read_decision(ports, run_id) if record.state != "canary" else None
    if decided is None:
        decided = decide(ports, run_id, choice, command_record(command))
    if decided.get("decision") != choice:
        raise refuse_other(run_id, choice, decided)
    return decided


def promote_or_roll_back(command: RunCommand, message: PubsubMessage, ports: Ports) -> None:
    if command.action not in ("promote", "rollback"):  # the subscription's filter
        raise PermanentError(
            "action", f"{command.action!r} is not carried out here", "send promote or rollback"
        )
    state = command_state(command)

    def work() -> dict[str, Any]:
        decided = decision_for_command(ports, command)
        log.info("promotion_command_decided", decision=decided.get("decision"))
        carry_out(ports, command.run_id)  # a refusal here is the command's too (the CLI says it)
        return {"decision": decided.get("decision")}

    outcome = run_once(
        ports.store,
        keys.command_done(command.run_id, command.action, state),
        command.action,
        work,
        lease=ports.settings.claim_lease,
    )
    if outcome.record.state == "failed":  # refused: a redelivery is refused the same way
        field = outcome.record.error_field or "run_id"
        said = (outcome.record.error or "the command was refused").removeprefix(f"{field}: ")
        raise PermanentError(field, said)
    record: PromotionRecord | None = carry_out(ports, command.run_id)
    log.info("promotion_command_done", state=record.state if record else None)
