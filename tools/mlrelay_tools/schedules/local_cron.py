"""`mlrelay schedule`: the registry's schedules as a cron loop in the embedded runtime.

At each slot it publishes the tick Cloud Scheduler would publish onto the runs topic, with the
slot as `logical_time` (the loop knows it exactly): the trigger fans it out as in the cloud, the
run ids are those of the cloud's ticks and of a backfill, and a slot published late (the machine
slept) never folds into the next one. Every `watch_every` (5 minutes, as the cloud's watchdog
Scheduler job) it also makes one watchdog pass (`watch`): stuck runs, deadlines, missed slots.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from mlrelay.contracts import RunRequest, utc_now
from mlrelay.ports.protocols import Publisher
from mlrelay.registry import Registry
from mlrelay.schedules.members import OwnedSchedule, all_schedules
from mlrelay.schedules.slots import CronSchedule
from mlrelay_tools.schedules.jobs import tick_request

log = structlog.get_logger()

WATCH_EVERY = timedelta(minutes=5)  # the cloud's `mlrelay-watchdog` Scheduler job's period


@dataclass(frozen=True)
class Tick:
    owned: OwnedSchedule
    slot: datetime


def due_ticks(registry: Registry, after: datetime, until: datetime) -> list[Tick]:
    """Every unpaused schedule's slots in (after, until], in time order."""
    ticks = []
    for owned in all_schedules(registry):
        if owned.schedule.paused:
            continue
        cron = CronSchedule(owned.schedule.cron, owned.schedule.time_zone)
        ticks += [Tick(owned, slot) for slot in cron.between(after, until) if slot > after]
    return sorted(ticks, key=lambda t: (t.slot, t.owned.owner, t.owned.schedule.name))


def next_slot(registry: Registry, after: datetime) -> datetime | None:
    slots = [
        CronSchedule(o.schedule.cron, o.schedule.time_zone).next_after(after)
        for o in all_schedules(registry)
        if not o.schedule.paused
    ]
    return min(slots, default=None)


def publish_tick(publisher: Publisher, topic: str, tick: Tick) -> str:
    """The tick Cloud Scheduler would publish, with its slot as `logical_time`: this loop knows
    the slot exactly, so a tick published late (the machine slept) still names its own slot."""
    body = tick_request(tick.owned.owner, tick.owned.schedule).model_dump(exclude_none=True)
    request = RunRequest.model_validate({**body, "logical_time": tick.slot})
    log.info("tick_published", owner=tick.owned.owner, schedule=tick.owned.schedule.name)
    return publisher.publish(topic, request.to_json(), request.attributes())


def run_cron(
    registry: Registry,
    publisher: Publisher,
    topic: str,
    *,
    deliver: Callable[[], None],
    sleep: Callable[[float], None],
    now: Callable[[], datetime] = utc_now,
    stop: Callable[[], bool] = lambda: False,
    watch: Callable[[], None] | None = None,
    watch_every: timedelta = WATCH_EVERY,
) -> int:
    """Sleep until the next slot, publish its ticks, let the runtime deliver; repeat until
    `stop()`; every `watch_every`, one watchdog pass (`watch`), then deliver what it published.
    Returns the number of ticks published."""
    published = 0
    last = now()
    watched: datetime | None = None
    while not stop():
        if watch is not None and (watched is None or now() - watched >= watch_every):
            watched = now()
            watch()
            deliver()
        upcoming = next_slot(registry, last)
        if upcoming is None and watch is None:
            log.warning("no_schedules", hint="add `schedules:` to the registry")
            return published
        wait = (upcoming - now()).total_seconds() if upcoming is not None else 30.0
        if wait > 0:
            sleep(min(wait, 30.0))  # wake now and then, so `stop()` is heard
            continue
        moment = now()
        for tick in due_ticks(registry, last, moment):
            publish_tick(publisher, topic, tick)
            published += 1
        last = moment
        deliver()
    return published
