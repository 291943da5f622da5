"""Validate a RunRequest against the registry, give the run its id, and ask for a snapshot."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import structlog

from mlrelay.contracts import LifecycleEvent, RunRequest, SnapshotRequest, utc_now
from mlrelay.envelope import PubsubMessage
from mlrelay.ledger import ledger_key, run_once
from mlrelay.logs import bind_run
from mlrelay.registry import resolve_parameters
from mlrelay.run_identity import derive_run_id
from mlrelay.wiring import Ports

log = structlog.get_logger()


@dataclass(frozen=True)
class Acceptance:
    run_id: str
    snapshot_request: SnapshotRequest
    reused: bool


def accept_run_request(request: RunRequest, message: PubsubMessage, ports: Ports) -> Acceptance:
    """Registry check -> run id -> claim -> `accepted` + SnapshotRequest.

    A request without dedup key or logical time is keyed by its Pub/Sub message id, so a
    redelivery of the same message is still one run. A duplicate re-emits the recorded request
    (downstream stages are idempotent too), which also heals a crash between claim and publish.
    """
    spec = ports.registry.pipeline(request.pipeline)
    parameters = resolve_parameters(spec, request.parameters)
    dedup_key = request.dedup_key
    if dedup_key is None and request.logical_time is None:
        dedup_key = f"message-{message.message_id}"
    logical_time = request.logical_time or message.publish_time
    run_id = derive_run_id(
        request.pipeline, parameters, logical_time=request.logical_time, dedup_key=dedup_key
    )
    with bind_run(run_id=run_id):
        outcome = run_once(
            ports.store,
            ledger_key(run_id, "trigger"),
            "trigger",
            lambda: {
                "run_id": run_id,
                "pipeline": request.pipeline,
                "parameters": parameters,
                "dedup_key": dedup_key,
                "logical_time": logical_time.isoformat(),
                "trigger": request.trigger,
                "requested_by": request.requested_by,
                "accepted_at": utc_now().isoformat(),
                "message_id": message.message_id,
            },
            lease=timedelta(minutes=5),
        )
        recorded = outcome.result
        snapshot_request = SnapshotRequest(
            run_id=run_id,
            pipeline=request.pipeline,
            parameters=recorded["parameters"],
            logical_time=recorded["logical_time"],
            trigger=recorded["trigger"],
            requested_by=recorded["requested_by"],
            accepted_at=recorded["accepted_at"],
        )
        ports.publish(
            LifecycleEvent(
                run_id=run_id,
                pipeline=request.pipeline,
                stage="trigger",
                status="accepted",
                summary=f"run of {request.pipeline} accepted ({request.trigger})",
                trigger=request.trigger,
                parameters=recorded["parameters"],
                details={
                    "logical_time": recorded["logical_time"],
                    "dedup_key": dedup_key,
                    "requested_by": recorded["requested_by"],
                    "reused": outcome.reused,
                },
            )
        )
        ports.publish(snapshot_request)
        log.info("run_accepted", reused=outcome.reused, trigger=request.trigger)
        return Acceptance(run_id, snapshot_request, outcome.reused)
