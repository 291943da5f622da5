"""Carry out `approve` / `reject` commands on held runs, and reject held runs that waited past
their pipeline's `approval_timeout` (`expire_held_runs`, called by the watchdog on each pass).

The decision is one create-only record (`runs/<run_id>/decision.json`): whichever of an approval,
a rejection or the timeout claims it first is the run's decision. The same command delivered
again (or two approvers clicking one card: the door gives them one command) finds its own
decision and finishes it again idempotently: an approval starts the held DeployRequest through
the deployer's own start, whose claim makes one job; a rejection publishes one final
`pipeline.rejected` (`details.command`: who, when, from where; or `details.reason:
"approval_timeout"`). A command about a run that is not held (never gated, already decided,
finished) is refused with a PermanentError naming the state.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import structlog

from mlrelay.contracts import LifecycleEvent, RunCommand, utc_now
from mlrelay.errors import PermanentError, TransientError
from mlrelay.history import read_summary
from mlrelay.logs import bind_run
from mlrelay.ports.container import Ports
from mlrelay.stage import keys
from mlrelay.stage.envelope import PubsubMessage
from mlrelay.stage.ledger import StageRecord, read_run, run_once
from mlrelay_deployer.approval_gate import Decision, Gate, gate_of
from mlrelay_deployer.cancel import command_state
from mlrelay_deployer.deploy import start_pipeline

log = structlog.get_logger()

DECISIONS: dict[str, Decision] = {"approve": "approved", "reject": "rejected"}
TIMEOUT_KEY = "approval_timeout"  # the action_key of the timeout's decision


def not_held(ports: Ports, command: RunCommand, records: dict[str, StageRecord]) -> str:
    """What the run is instead of held, for the refusal."""
    summary = read_summary(ports.store, command.pipeline, command.run_id)
    if summary is not None:
        return f"has already ended ({summary.status})"
    if "pipeline" in records:
        return "is not held for approval (its pipeline was started)"
    if "snapshot" in records:
        return "is not held for approval (its snapshot stage has not handed it on)"
    return "is not held for approval (trigger stage)"


def command_record(command: RunCommand) -> dict[str, str]:
    return {
        "action": command.action,
        "requested_by": command.requested_by,
        "requested_at": command.requested_at.isoformat(),
        "source": command.source,
    }


def decide(ports: Ports, gate: Gate, decision: Decision, action_key: str, **said: Any) -> Gate:
    """Claim the run's one decision; the gate as decided (by this or an earlier decision)."""

    def record() -> dict[str, Any]:
        return {"decision": decision, "action_key": action_key, **said}

    outcome = run_once(
        ports.store,
        keys.decision(gate.run_id),
        "decision",
        record,
        lease=ports.settings.claim_lease,
    )
    decided = outcome.result
    found = decided.get("decision")
    return Gate(
        gate.run_id,
        gate.request,
        gate.held_at,
        gate.timeout_at,
        found if found in ("approved", "rejected") else None,
        decided,
    )


def rejected_event(gate: Gate) -> LifecycleEvent:
    request, decided = gate.request, gate.decided
    details: dict[str, Any]
    if decided.get("action_key") == TIMEOUT_KEY:
        summary = f"rejected: not approved within {decided.get('approval_timeout', 'its timeout')}"
        details = {"reason": "approval_timeout", "timeout_at": gate.timeout_at.isoformat()}
    else:
        command = dict(decided.get("command") or {})
        summary = f"rejected by {command.get('requested_by', 'an approver')}"
        details = {"command": command}
    return LifecycleEvent(
        run_id=request.run_id,
        pipeline=request.pipeline,
        stage="pipeline",
        status="rejected",
        summary=summary,
        trigger=request.trigger,
        parameters=request.parameters,
        details={**details, "held_at": gate.held_at.isoformat()},
    )


def report_rejection(ports: Ports, gate: Gate) -> bool:
    """Publish the run's one `pipeline.rejected` (a redelivery finds the marker); True: now."""
    marker = keys.decision_published(gate.run_id)
    if ports.store.read(marker) is not None:
        log.info("rejection_already_reported")
        return False
    ports.publish(rejected_event(gate))
    ports.store.create(marker, b"")
    log.info("run_rejected_reported", reason=gate.decided.get("action_key"))
    return True


def carry_out_decision(ports: Ports, gate: Gate, message: PubsubMessage) -> bool:
    """Finish a decision (again, on a redelivery): the start, or the rejection's event; then the
    run leaves the timeout's index. True when a rejection was reported now."""
    reported = False
    if gate.decision == "approved":
        start_pipeline(gate.request, message, ports)  # its claim: one job however often
    elif gate.decision == "rejected":
        reported = report_rejection(ports, gate)
    ports.store.delete(keys.held(gate.run_id))  # no longer waiting: the timeout skips it
    return reported


def decision_for_command(command: RunCommand, ports: Ports) -> Gate:
    """The held run decided by this command; PermanentError naming the state when it is not
    held (never gated, finished, or already decided by another command or the timeout)."""
    wanted = DECISIONS[command.action]
    records = read_run(ports.store, command.run_id)
    trigger = records.get("trigger")
    pipeline = (trigger.result or {}).get("pipeline") if trigger is not None else None
    if pipeline != command.pipeline:
        raise PermanentError(
            "run_id", f"{command.run_id!r} is not a run of {command.pipeline}", "check the id"
        )
    gate = gate_of(records)
    if gate is None:
        raise PermanentError(
            "run_id",
            f"{command.run_id} {not_held(ports, command, records)}",
            "only a run held by `approval: before_deploy` can be approved or rejected",
        )
    if gate.decision is None:
        gate = decide(ports, gate, wanted, command.action_key, command=command_record(command))
    if gate.decided.get("action_key") != command.action_key:
        by = (gate.decided.get("command") or {}).get("requested_by")
        how = f"by {by}" if by else "when its approval timed out"
        raise PermanentError(
            "run_id",
            f"{command.run_id} is not held any more: it was already {gate.decision} {how}",
            "nothing to do; the run's message shows what came of it",
        )
    return gate


def approve_or_reject(command: RunCommand, message: PubsubMessage, ports: Ports) -> None:
    """`approve` -> the held run's job started once; `reject` -> one `pipeline.rejected`.

    The consumer's claim is `commands/<run_id>/<action>-<state>.done.json` (as for cancel): a
    refusal is recorded there and given again to a redelivery (and to `mlrelay approve`)."""
    if command.action not in DECISIONS:  # the subscription's filter lets only these through
        raise PermanentError(
            "action", f"{command.action!r} is not carried out here", "send approve or reject"
        )
    state = command_state(command)

    def work() -> dict[str, Any]:
        gate = decision_for_command(command, ports)
        log.info("approval_decided", decision=gate.decision, requested_by=command.requested_by)
        return {"decision": gate.decision}

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
    gate = gate_of(read_run(ports.store, command.run_id))
    if gate is None:  # cannot happen: the work above found it held
        raise PermanentError("run_id", f"{command.run_id} lost its approval record")
    carry_out_decision(ports, gate, message)


def expire_held_runs(ports: Ports, now: datetime | None = None) -> list[str]:
    """Reject every held run whose `approval_timeout` has passed (one `pipeline.rejected` each,
    `details.reason: "approval_timeout"`); the run ids rejected by this call. Idempotent: a run
    decided before (by a person, or an earlier pass) is only taken off the index."""
    now = now or utc_now()
    expired: list[str] = []
    for key in ports.store.list(keys.HELD):
        run_id = key.removeprefix(keys.HELD)
        with bind_run(run_id=run_id):
            records = read_run(ports.store, run_id)
            gate = gate_of(records)
            if gate is None:  # an index entry without its record: written out of order
                continue
            if gate.decision is not None:  # decided before (an approval starts its own job)
                if gate.decision == "rejected" and report_rejection(ports, gate):
                    expired.append(run_id)
                ports.store.delete(key)
                continue
            if gate.timeout_at > now:
                continue
            try:
                decided = decide(
                    ports,
                    gate,
                    "rejected",
                    TIMEOUT_KEY,
                    reason="approval_timeout",
                    approval_timeout=str(
                        (records["approval"].result or {}).get("approval_timeout", "")
                    ),
                    decided_at=now.isoformat(),
                )
            except TransientError:  # a person's command is deciding it right now
                log.info("approval_being_decided")
                continue
            if decided.decision == "rejected" and report_rejection(ports, decided):
                expired.append(run_id)
            ports.store.delete(key)
            log.info("approval_timed_out", decision=decided.decision)
    return expired
