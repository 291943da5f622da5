"""Validate a RunRequest against the registry, give each run its id, and ask for its snapshot.

A request names a pipeline or a group; a scheduler tick (a request with `schedule` and no
`logical_time`) stands for the slot its publish time falls in, and fans out to one run per member
of the schedule. Every member is checked before any run starts, so a bad tick starts nothing;
the members are then accepted side by side (`ACCEPT_THREADS`), not one after another.
"""

from __future__ import annotations

import contextvars
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from mlrelay.contracts import LifecycleEvent, RunRequest, Scalar, SnapshotRequest, utc_now
from mlrelay.logs import bind_run
from mlrelay.ports.container import Ports
from mlrelay.registry import resolve_parameters
from mlrelay.schedules.members import Member, members_of, schedule_named
from mlrelay.stage import keys
from mlrelay.stage.echoes import pass_on, re_request_of_run
from mlrelay.stage.envelope import PubsubMessage
from mlrelay.stage.ledger import run_once
from mlrelay.stage.open_runs import OpenRun, mark_open
from mlrelay.stage.run_identity import derive_run_id

log = structlog.get_logger()

# members accepted at once: each is a ledger claim plus two publishes, ~0.2 s of waiting on GCS
# and Pub/Sub, so a 50-member tick accepted one by one took ~11 s before its last run started
ACCEPT_THREADS = 16


@dataclass(frozen=True)
class Acceptance:
    run_id: str
    snapshot_request: SnapshotRequest
    reused: bool
    member: str


def tick_slot(request: RunRequest, message: PubsubMessage) -> datetime | None:
    """The run's logical time: given, or the schedule slot of a scheduler tick."""
    if request.logical_time is not None or request.schedule is None:
        return request.logical_time
    from mlrelay.schedules.slots import CronSchedule  # croniter: only ticks pay its import

    ref = request.schedule
    return CronSchedule(ref.cron, ref.time_zone).slot_of_tick(message.publish_time)


def accept_run_request(
    request: RunRequest, message: PubsubMessage, ports: Ports
) -> list[Acceptance]:
    """Registry check -> one run id per member -> claim -> `accepted` + SnapshotRequest each.

    A request without dedup key or logical time is keyed by its Pub/Sub message id, so a
    redelivery of the same message is still one run. A redelivery re-emits the recorded request
    while the snapshot has not started (and `accepted` while the notifier has not taken it),
    which heals a crash between claim and publish; a new request for a recorded run (another
    message id) is answered in full, down to the pipeline's outcome (`mlrelay.stage.echoes`).
    """
    registry = ports.registry
    schedule = None
    if request.schedule is not None:
        schedule = schedule_named(registry, request.pipeline, request.schedule.name)
    members = members_of(registry, request.pipeline, schedule)
    logical_time = tick_slot(request, message)
    dedup_key = request.dedup_key
    if dedup_key is None and logical_time is None:
        dedup_key = f"message-{message.message_id}"
    planned = [
        (
            member,
            resolve_parameters(
                registry.pipeline(member.pipeline), {**member.parameters, **request.parameters}
            ),
        )
        for member in members
    ]
    if len(planned) == 1:
        member, parameters = planned[0]
        return [accept_member(request, message, ports, member, parameters, logical_time, dedup_key)]
    with ThreadPoolExecutor(min(ACCEPT_THREADS, len(planned)), "accept") as pool:

        def accept(member: Member, parameters: dict[str, Scalar]) -> Acceptance:
            return accept_member(
                request, message, ports, member, parameters, logical_time, dedup_key
            )

        # each thread runs in a copy of this one's context: the message's log fields
        futures = [
            pool.submit(contextvars.copy_context().run, accept, member, parameters)
            for member, parameters in planned
        ]
        return [future.result() for future in futures]


def accept_member(
    request: RunRequest,
    message: PubsubMessage,
    ports: Ports,
    member: Member,
    parameters: dict[str, Scalar],
    logical_time: datetime | None,
    dedup_key: str | None,
) -> Acceptance:
    pipeline = member.pipeline
    run_id = derive_run_id(pipeline, parameters, logical_time=logical_time, dedup_key=dedup_key)
    recorded_time = logical_time or message.publish_time
    schedule = request.schedule.name if request.schedule else None
    with bind_run(run_id=run_id, pipeline=pipeline):

        def accept() -> dict[str, Any]:
            accepted_at = utc_now().isoformat()
            # the watchdog's index of open runs; the notifier removes it once the run settles
            mark_open(
                ports.store,
                OpenRun(
                    run_id,
                    pipeline,
                    recorded_time.isoformat(),
                    accepted_at,
                    request.trigger,
                    schedule,
                ),
            )
            return {
                "run_id": run_id,
                "pipeline": pipeline,
                "parameters": parameters,
                "dedup_key": dedup_key,
                "logical_time": recorded_time.isoformat(),
                "trigger": request.trigger,
                "requested_by": request.requested_by,
                "accepted_at": accepted_at,
                "message_id": message.message_id,
                "requested_as": request.pipeline,
                "member": member.label,
                "schedule": schedule,
            }

        outcome = run_once(
            ports.store,
            keys.ledger(run_id, "trigger"),
            "trigger",
            accept,
            lease=ports.settings.claim_lease,
        )
        recorded = outcome.result
        snapshot_request = SnapshotRequest(
            run_id=run_id,
            pipeline=pipeline,
            parameters=recorded["parameters"],
            logical_time=recorded["logical_time"],
            trigger=recorded["trigger"],
            requested_by=recorded["requested_by"],
            accepted_at=recorded["accepted_at"],
        )
        pass_on(
            ports,
            outcome,
            LifecycleEvent(
                run_id=run_id,
                pipeline=pipeline,
                stage="trigger",
                status="accepted",
                summary=f"run of {pipeline} accepted ({request.trigger})",
                trigger=request.trigger,
                parameters=recorded["parameters"],
                details={
                    "logical_time": recorded["logical_time"],
                    "dedup_key": dedup_key,
                    "requested_by": recorded["requested_by"],
                    "reused": outcome.reused,
                    "member": member.label,
                    "requested_as": request.pipeline,
                    "schedule": schedule,
                },
            ),
            snapshot_request,
            "snapshot",
            re_request_of_run(message, outcome, recorded.get("message_id")),
        )
        log.info("run_accepted", reused=outcome.reused, trigger=request.trigger)
        return Acceptance(run_id, snapshot_request, outcome.reused, member.label)
