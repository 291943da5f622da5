"""Carry out a `cancel` RunCommand: stop the run's job on its backend, once per command.

The claim is `commands/<run_id>/cancel-<state>.done.json` (the door's own claim is the same name
without `.done`): a redelivered command, or the same command answered late, calls the backend at
most once more, and a backend treats a second cancel of a job it is cancelling as success.
What the run may be in:

- submitted (or, on the local backend, running): the backend is asked to stop it, then one
  `pipeline.cancelled` event says who asked, when and from where;
- already finished (a history summary, or a final pipeline record): no backend call; the
  command is refused with a PermanentError naming the state (kept and reported as a rejection);
- not submitted yet (no pipeline record, or a Vertex/KFP create in flight): refused the same
  way, naming the state; the deployer goes on to submit it (cancel it once it runs).
"""

from __future__ import annotations

from typing import Any

import structlog

from mlrelay.contracts import LifecycleEvent, RunCommand
from mlrelay.errors import PermanentError
from mlrelay.history import read_summary
from mlrelay.ports.container import Ports
from mlrelay.stage import keys
from mlrelay.stage.envelope import PubsubMessage
from mlrelay.stage.ledger import StageRecord, read_run, run_once
from mlrelay_deployer.backends import build_backend

log = structlog.get_logger()

_STILL = "cancel it once it shows as running, or let it finish"
_OVER = "nothing to cancel; see the run's message for its outcome"


def command_state(command: RunCommand) -> str:
    """The run state (16 hex digits) the command was asked in: the last part of its key."""
    return command.action_key.rsplit("/", 1)[1]


_RUNS_IN_THE_CLAIM = ("local", "local_job")  # `start` waits for its child process


def job_to_cancel(ports: Ports, command: RunCommand, records: dict[str, StageRecord]) -> str:
    """The backend job of a run that can be cancelled now; PermanentError naming the run's
    state otherwise."""
    run_id = command.run_id
    trigger = records.get("trigger")
    pipeline = (trigger.result or {}).get("pipeline") if trigger is not None else None
    if pipeline != command.pipeline:
        raise PermanentError(
            "run_id", f"{run_id!r} is not a run of {command.pipeline}", "check the id"
        )
    summary = read_summary(ports.store, command.pipeline, run_id)
    if summary is not None:
        raise PermanentError("run_id", f"{run_id} has already ended ({summary.status})", _OVER)
    deploy = records.get("pipeline")
    decision = (records["decision"].result or {}) if "decision" in records else {}
    if deploy is None and decision.get("decision") == "rejected":
        raise PermanentError("run_id", f"{run_id} has already ended (rejected)", _OVER)
    if deploy is None and "approval" in records and not decision:
        raise PermanentError(
            "run_id",
            f"{run_id} is held for approval, not running",
            "reject it instead (the card's Reject button, or `mlrelay reject RUN_ID`)",
        )
    if deploy is None:
        stage = "snapshot" if "snapshot" in records else "trigger"
        raise PermanentError("run_id", f"{run_id} is not submitted yet ({stage} stage)", _STILL)
    result = deploy.result or {}
    if deploy.state == "failed":
        raise PermanentError("run_id", f"{run_id} has already failed (it could not start)", _OVER)
    if deploy.state == "running":
        if ports.registry.pipeline(command.pipeline).backend in _RUNS_IN_THE_CLAIM:
            return (
                run_id  # the local backends run inside the deployer's claim: the child is the job
            )
        raise PermanentError("run_id", f"{run_id} is being submitted right now", _STILL)
    status = str(result.get("status", "submitted"))
    if status != "submitted":
        raise PermanentError("run_id", f"{run_id} has already ended ({status})", _OVER)
    if result.get("details", {}).get("kind") == "recurring_run":
        raise PermanentError(
            "run_id",
            f"{run_id} is a KFP recurring run, not one run",
            "pause or delete the recurring run on the KFP host",
        )
    return str(result.get("job_name") or run_id)


def cancelled_event(command: RunCommand, result: dict[str, Any]) -> LifecycleEvent:
    requested = {
        "action": command.action,
        "requested_by": command.requested_by,
        "requested_at": command.requested_at.isoformat(),
        "source": command.source,
    }
    return LifecycleEvent(
        run_id=command.run_id,
        pipeline=command.pipeline,
        stage="pipeline",
        status="cancelled",
        summary=f"pipeline cancelled by {command.requested_by}",
        links=dict(result.get("links") or {}),
        details={"command": requested},
    )


def cancel_for_command(command: RunCommand, message: PubsubMessage, ports: Ports) -> None:
    if command.action != "cancel":  # the subscription's filter lets only cancels through
        raise PermanentError(
            "action", f"{command.action!r} is not carried out here", "send it to the trigger"
        )
    state = command_state(command)

    def work() -> dict[str, Any]:
        records = read_run(ports.store, command.run_id)
        job_name = job_to_cancel(ports, command, records)
        spec = ports.registry.pipeline(command.pipeline)
        backend = ports.pipeline_backend(command.pipeline, lambda p: build_backend(p, spec))
        requested = cancelled_event(command, {}).details["command"]
        service_state = backend.cancel(
            run_id=command.run_id, job_name=job_name, requested=requested
        )
        deploy = records.get("pipeline")
        links = dict(((deploy.result if deploy else None) or {}).get("links") or {})
        log.info("pipeline_cancel_requested", job=job_name, service_state=service_state)
        return {"job_name": job_name, "service_state": service_state, "links": links}

    outcome = run_once(
        ports.store,
        keys.command_done(command.run_id, "cancel", state),
        "cancel",
        work,
        lease=ports.settings.claim_lease,
    )
    if outcome.record.state == "failed":  # refused: a redelivery is refused the same way
        field = outcome.record.error_field or "run_id"
        said = (outcome.record.error or "the cancel was refused").removeprefix(f"{field}: ")
        raise PermanentError(field, said)
    published = keys.command_published(command.run_id, "cancel", state)
    if outcome.reused and ports.store.read(published) is not None:
        log.info("cancel_already_reported")
        return
    ports.publish(cancelled_event(command, outcome.result))
    ports.store.create(published, b"")
    log.info("pipeline_cancelled_reported", reused=outcome.reused)
