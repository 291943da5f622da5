"""Which schedule slot a run id stands for: what a Backfill button (value: the missed slot's run
id) is resolved to by the door and by the trigger that carries it out.

A scheduled run's id is `<pipeline>-<slot, UTC>-<digest of pipeline, slot and parameters>`
(mlrelay.stage.run_identity), so the slot is read from the id and then proved: the registry must
have a schedule that fires at that instant and one of its members whose run id, derived afresh,
is exactly this one. A click can therefore only name a real slot of a real schedule, and the run
the backfill makes is the very run the tick would have made.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from mlrelay.contracts import RunRequest, ScheduleRef
from mlrelay.errors import PermanentError
from mlrelay.registry import Registry, ScheduleSpec, resolve_parameters
from mlrelay.schedules.members import all_schedules, members_of
from mlrelay.stage.run_identity import derive_run_id

SLOT_RUN_ID = re.compile(r"^(?P<pipeline>.+)-(?P<slot>\d{8}t\d{6}z)-[0-9a-f]{12}$")
_FIX = "use the Backfill button of a `schedule.missed` message, or `mlrelay backfill`"


@dataclass(frozen=True)
class SlotRun:
    run_id: str
    pipeline: str  # the member pipeline the run id belongs to
    owner: str  # the pipeline or group the schedule belongs to
    schedule: ScheduleSpec
    slot: datetime  # UTC

    def backfill_request(self, requested_by: str | None) -> RunRequest:
        """The request the trigger accepts for this slot: the schedule's own tick, with the slot
        given, so its members get the ids their tick would have given them."""
        return RunRequest(
            pipeline=self.owner,
            trigger="backfill",
            logical_time=self.slot,
            requested_by=requested_by,
            schedule=ScheduleRef(
                name=self.schedule.name,
                cron=self.schedule.cron,
                time_zone=self.schedule.time_zone,
            ),
        )


def slot_of_run_id(run_id: str) -> tuple[str, datetime] | None:
    """(pipeline, slot) as the id spells them, or None for an id that is not a slot's."""
    found = SLOT_RUN_ID.match(run_id)
    if found is None:
        return None
    try:
        slot = datetime.strptime(found["slot"], "%Y%m%dt%H%M%Sz").replace(tzinfo=UTC)
    except ValueError:
        return None
    return found["pipeline"], slot


def find_slot_run(registry: Registry, run_id: str, *, now: datetime) -> SlotRun:
    """The schedule slot `run_id` is the run of; PermanentError when none is (or the slot is
    still to come)."""
    from mlrelay.schedules.slots import CronSchedule  # croniter: only backfills pay its import

    parsed = slot_of_run_id(run_id)
    if parsed is None:
        raise PermanentError("run_id", f"{run_id!r} is not the run id of a schedule slot", _FIX)
    pipeline, slot = parsed
    if slot > now:
        raise PermanentError(
            "run_id", f"{run_id!r} is the run of a slot still to come ({slot:%Y-%m-%d %H:%M} UTC)"
        )
    for owned in all_schedules(registry):
        members = [
            m
            for m in members_of(registry, owned.owner, owned.schedule)
            if run_id.startswith(f"{m.pipeline}-") and m.pipeline in registry.pipelines
        ]
        if not members:
            continue
        cron = CronSchedule(owned.schedule.cron, owned.schedule.time_zone)
        if slot not in cron.between(slot, slot):
            continue
        for member in members:
            parameters = resolve_parameters(registry.pipeline(member.pipeline), member.parameters)
            if derive_run_id(member.pipeline, parameters, logical_time=slot) == run_id:
                return SlotRun(run_id, member.pipeline, owned.owner, owned.schedule, slot)
    raise PermanentError(
        "run_id",
        f"no schedule of {pipeline!r} in the registry has the slot {slot:%Y-%m-%d %H:%M} UTC "
        "with these parameters",
        _FIX,
    )
