"""Backfill: a RunRequest for every slot a schedule missed between two instants.

Each request carries its slot as `logical_time` and the schedule it belongs to, so the trigger
gives it the very run id the scheduled tick would have had (pipeline + slot + parameters) and
fans it out like the tick. Running a backfill twice therefore starts nothing new.

The concurrency bound: at most `concurrency` runs are in progress at once. `publish_windowed`
publishes the next slot only when a run of the window has finished (read from the run ledger);
the embedded runtime gets the same bound from its bus's worker count.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import structlog

from mlrelay.contracts import RunRequest, ScheduleRef
from mlrelay.errors import PermanentError
from mlrelay.ports.protocols import ObjectStore, Publisher
from mlrelay.registry import Registry, resolve_parameters
from mlrelay.schedules.members import members_of, schedules_of
from mlrelay.schedules.slots import CronSchedule
from mlrelay.stage.ledger import read_run
from mlrelay.stage.run_identity import derive_run_id

log = structlog.get_logger()


@dataclass(frozen=True)
class BackfillItem:
    request: RunRequest
    run_ids: list[str]  # what the trigger will name the runs of this slot


def backfill_items(
    registry: Registry,
    owner: str,
    start: datetime,
    end: datetime,
    *,
    schedule_name: str | None = None,
    requested_by: str | None = None,
) -> list[BackfillItem]:
    """One item per slot in [start, end] of the owner's schedules (or the one named)."""
    if end < start:
        raise PermanentError("--to", "is before --from", "give a range that moves forward")
    schedules = [s for s in schedules_of(registry, owner) if schedule_name in (None, s.name)]
    if not schedules:
        what = f"a schedule named {schedule_name!r}" if schedule_name else "schedules"
        raise PermanentError("schedule", f"{owner!r} has no {what}", "see the registry")
    items = []
    for schedule in schedules:
        members = members_of(registry, owner, schedule)
        for slot in CronSchedule(schedule.cron, schedule.time_zone).between(start, end):
            request = RunRequest(
                pipeline=owner,
                trigger="backfill",
                logical_time=slot,
                requested_by=requested_by,
                schedule=ScheduleRef(
                    name=schedule.name, cron=schedule.cron, time_zone=schedule.time_zone
                ),
            )
            run_ids = [
                derive_run_id(
                    m.pipeline,
                    resolve_parameters(registry.pipeline(m.pipeline), m.parameters),
                    logical_time=slot,
                )
                for m in members
            ]
            items.append(BackfillItem(request, run_ids))
    return sorted(items, key=lambda item: (item.request.logical_time or start, item.run_ids))


def run_finished(store: ObjectStore, run_id: str) -> bool:
    """The run has left the pipeline's hands: deployed (or failed, or rejected on the way)."""
    records = read_run(store, run_id)
    deploy = records.get("pipeline")
    if deploy is not None and deploy.state in ("done", "failed"):
        return True
    return any(r.state == "failed" for r in records.values())


def publish_all(publisher: Publisher, topic: str, items: list[BackfillItem]) -> list[str]:
    return [
        publisher.publish(topic, item.request.to_json(), item.request.attributes())
        for item in items
    ]


def publish_windowed(
    publisher: Publisher,
    topic: str,
    items: list[BackfillItem],
    *,
    concurrency: int,
    finished: Callable[[str], bool],
    poll_seconds: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
) -> list[str]:
    """Publish slot after slot, keeping at most `concurrency` unfinished runs in flight."""
    if concurrency < 1:
        raise PermanentError("--concurrency", "must be at least 1", "e.g. --concurrency 4")
    message_ids: list[str] = []
    in_flight: set[str] = set()
    for item in items:
        pending = [rid for rid in item.run_ids if not finished(rid)]
        while in_flight and len(in_flight) + len(pending) > concurrency:
            in_flight = {rid for rid in in_flight if not finished(rid)}
            if len(in_flight) + len(pending) > concurrency:
                sleep(poll_seconds)
        if pending:  # a slot whose runs all finished before is not published again
            message_ids.append(
                publisher.publish(topic, item.request.to_json(), item.request.attributes())
            )
            in_flight.update(pending)
            log.info("backfill_slot_published", slot=str(item.request.logical_time))
    return message_ids
