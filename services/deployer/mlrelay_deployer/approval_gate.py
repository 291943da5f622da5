"""The approval gate (`approval: before_deploy`): a run is held after its snapshot until a person
approves it (mlrelay_deployer.approvals carries out the click), or rejected when it waits longer
than the pipeline's `approval_timeout`.

What the bucket says of a gated run:

- `runs/<run_id>/approval.json`: held (a ledger record, create-only, with the DeployRequest to
  start once approved and when the wait times out), written by the deployer on the run's
  DeployRequest instead of starting the job; `approval.published` once `pipeline.held` went out;
- `approvals/held/<run_id>`: an index entry while it waits, so the timeout lists only these;
- `runs/<run_id>/decision.json`: `approved` or `rejected` (a person's command, or the timeout),
  create-only: the first decision is the only one.

A redelivered DeployRequest of a held run publishes nothing new; once approved it goes on to the
start, whose own claim (`runs/<run_id>/pipeline.json`) makes one job however often it is asked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import structlog

from mlrelay.contracts import DeployRequest, LifecycleEvent, utc_now
from mlrelay.errors import TransientError
from mlrelay.ports.container import Ports
from mlrelay.registry import PipelineSpec
from mlrelay.stage import keys
from mlrelay.stage.ledger import StageRecord, run_once

log = structlog.get_logger()

Decision = Literal["approved", "rejected"]


@dataclass(frozen=True)
class Gate:
    """A gated run as the bucket records it."""

    run_id: str
    request: DeployRequest
    held_at: datetime
    timeout_at: datetime
    decision: Decision | None  # None: still held
    decided: dict[str, Any]  # the decision record's result (who, when, action_key / reason)


def gate_of(records: dict[str, StageRecord]) -> Gate | None:
    """The run's gate from its ledger records (`read_run`); None: the run was never held."""
    held = records.get("approval")
    if held is None or held.state != "done" or not held.result:
        return None
    decision = records.get("decision")
    decided = (decision.result or {}) if decision is not None and decision.state == "done" else {}
    found = decided.get("decision")
    return Gate(
        run_id=str(held.result["run_id"]),
        request=DeployRequest.model_validate(held.result["request"]),
        held_at=datetime.fromisoformat(held.result["held_at"]),
        timeout_at=datetime.fromisoformat(held.result["timeout_at"]),
        decision=found if found in ("approved", "rejected") else None,
        decided=decided,
    )


def read_gate(ports: Ports, run_id: str) -> Gate | None:
    records: dict[str, StageRecord] = {}
    for name, key in (("approval", keys.approval(run_id)), ("decision", keys.decision(run_id))):
        raw = ports.store.read(key)
        if raw is not None:
            records[name] = StageRecord.from_json(raw)
    return gate_of(records)


def snapshot_figures(ports: Ports, request: DeployRequest) -> dict[str, Any]:
    """What an approver looks at: rows, bytes, files, fingerprint, and the manifest's quality
    block when it has one (a manifest in another bucket gives only the request's figures)."""
    snapshot = request.snapshot
    figures: dict[str, Any] = {
        "rows": snapshot.row_count,
        "bytes": snapshot.total_bytes,
        "files": snapshot.file_count,
        "fingerprint": snapshot.fingerprint,
        "manifest_uri": snapshot.manifest_uri,
    }
    root = ports.store.uri("")
    if snapshot.manifest_uri.startswith(root):
        raw = ports.store.read(snapshot.manifest_uri.removeprefix(root).lstrip("/"))
        try:
            manifest = json.loads(raw) if raw is not None else {}
        except (UnicodeDecodeError, json.JSONDecodeError):
            manifest = {}
        quality = manifest.get("quality") if isinstance(manifest, dict) else None
        if quality:
            figures["quality"] = quality
    return figures


def held_event(request: DeployRequest, gate: Gate, figures: dict[str, Any]) -> LifecycleEvent:
    waits = gate.timeout_at - gate.held_at
    return LifecycleEvent(
        run_id=request.run_id,
        pipeline=request.pipeline,
        stage="pipeline",
        status="held",
        summary=(
            f"held for approval: {figures['rows']} rows, {figures['files']} files; "
            f"rejected unless approved by {gate.timeout_at.isoformat(timespec='minutes')}"
        ),
        trigger=request.trigger,
        parameters=request.parameters,
        figures={"rows": figures["rows"], "bytes": figures["bytes"], "files": figures["files"]},
        details={
            "approval": "before_deploy",
            "snapshot": figures,
            "held_at": gate.held_at.isoformat(),
            "timeout_at": gate.timeout_at.isoformat(),
            "timeout_seconds": int(waits.total_seconds()),
        },
    )


def hold_for_approval(
    request: DeployRequest, ports: Ports, spec: PipelineSpec, *, now: datetime | None = None
) -> bool:
    """True: the run is held (or was rejected), so the deployer starts nothing now. False: start
    it (not gated, already approved, or started before the gate was configured)."""
    if ports.store.read(keys.ledger(request.run_id, "pipeline")) is not None:
        return False  # started already: the start's own claim answers the redelivery
    gate = read_gate(ports, request.run_id)
    if gate is not None and gate.decision is not None:
        log.info("approval_gate_decided", decision=gate.decision)
        return gate.decision == "rejected"
    if spec.approval != "before_deploy":
        return False
    held_at = now or utc_now()

    def hold() -> dict[str, Any]:
        timeout_at = held_at + timedelta(seconds=spec.approval_timeout_seconds)
        return {
            "run_id": request.run_id,
            "pipeline": request.pipeline,
            "held_at": held_at.isoformat(),
            "timeout_at": timeout_at.isoformat(),
            "approval_timeout": spec.approval_timeout,
            "request": request.model_dump(mode="json"),
        }

    outcome = run_once(
        ports.store,
        keys.approval(request.run_id),
        "approval",
        hold,
        lease=ports.settings.claim_lease,
    )
    gate = gate_of({"approval": outcome.record})
    if gate is None:  # cannot happen: `hold` raises nothing permanent
        raise TransientError(f"{keys.approval(request.run_id)}: unreadable approval record")
    ports.store.create(keys.held(request.run_id), b"")  # the timeout's index (idempotent)
    if outcome.reused and ports.store.read(keys.approval_published(request.run_id)) is not None:
        log.info("run_still_held")
        return True
    ports.publish(held_event(gate.request, gate, snapshot_figures(ports, gate.request)))
    ports.store.create(keys.approval_published(request.run_id), b"")
    log.info("run_held_for_approval", timeout_at=gate.timeout_at.isoformat())
    return True
