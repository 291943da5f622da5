"""What a schedule's slot should have made: the run ids of its members, and the request that
starts them late (a backfill). The trigger derives a tick's run ids the same way
(`mlrelay_trigger.accept`: pipeline + slot + the member's effective parameters), so "expected vs
seen" is an exact comparison of ids."""

from __future__ import annotations

from datetime import datetime

from mlrelay.contracts import RunRequest, ScheduleRef
from mlrelay.registry import Registry, resolve_parameters
from mlrelay.schedules.members import OwnedSchedule, members_of
from mlrelay.stage.run_identity import derive_run_id


def slot_run_ids(registry: Registry, owned: OwnedSchedule, slot: datetime) -> list[str]:
    """The run id of each member a tick of `slot` starts, in member order."""
    return [
        derive_run_id(
            member.pipeline,
            resolve_parameters(registry.pipeline(member.pipeline), member.parameters),
            logical_time=slot,
        )
        for member in members_of(registry, owned.owner, owned.schedule)
    ]


def backfill_request(owned: OwnedSchedule, slot: datetime, requested_by: str) -> RunRequest:
    """The slot's runs, asked for late: the same run ids as the tick's, trigger `backfill`."""
    schedule = owned.schedule
    return RunRequest(
        pipeline=owned.owner,
        trigger="backfill",
        logical_time=slot,
        requested_by=requested_by,
        schedule=ScheduleRef(name=schedule.name, cron=schedule.cron, time_zone=schedule.time_zone),
    )
