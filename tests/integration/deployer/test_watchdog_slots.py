"""Missed ticks against the slot oracle (CronSchedule), no peers but slow (a year of passes per
example, so not in the fast tier): a year of slots in zones with
DST gaps and overlaps, every tick accepted the way the trigger derives its run id, gives no
alert however the passes are spaced; one dropped tick gives exactly one `schedule.missed`, for
its own slot; a paused schedule never alerts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlrelay.registry import ScheduleSpec
from mlrelay.stage import keys
from tests.watchdog_kit import (
    MemoryStore,
    accept_all,
    checkpoint,
    pass_through,
    pipeline_spec,
    registry_of,
    ticks,
)

ZONES = [
    "Europe/Amsterdam",
    "America/New_York",
    "Australia/Lord_Howe",
    "America/Santiago",
    "Pacific/Chatham",
    "UTC",
]
YEAR_START = datetime(2026, 1, 1, tzinfo=UTC)
YEAR_END = datetime(2027, 1, 1, tzinfo=UTC)

# daily at a DST-prone hour (fires once at an overlap), hourly (fires at both)
daily = st.builds(
    lambda m, h: f"{m} {h} * * *",
    st.sampled_from([0, 15, 30, 45]),
    st.sampled_from([0, 1, 2, 3, 12, 23]),
)
hourly = st.builds(lambda m: f"{m} * * * *", st.sampled_from([0, 30]))
# three weeks from before the northern and southern transitions (spring and autumn)
TRANSITIONS = [
    datetime(2026, 3, 20, tzinfo=UTC),
    datetime(2026, 3, 27, tzinfo=UTC),
    datetime(2026, 9, 20, tzinfo=UTC),
    datetime(2026, 10, 20, tzinfo=UTC),
]


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cron=daily,
    zone=st.sampled_from(ZONES),
    delay_s=st.integers(min_value=0, max_value=50),
    steps=st.lists(st.sampled_from([5, 13, 24, 40]), min_size=1, max_size=4),
)
def test_a_year_of_accepted_daily_ticks_across_dst_gives_no_alert(
    cron: str, zone: str, delay_s: int, steps: list[float]
) -> None:
    _no_alert(cron, zone, delay_s, steps, YEAR_START, YEAR_END)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cron=hourly,
    zone=st.sampled_from(ZONES),
    start=st.sampled_from(TRANSITIONS),
    delay_s=st.integers(min_value=0, max_value=50),
    steps=st.lists(st.sampled_from([0.5, 1, 5, 24]), min_size=1, max_size=4),
)
def test_hourly_ticks_through_dst_gaps_and_overlaps_give_no_alert(
    cron: str, zone: str, start: datetime, delay_s: int, steps: list[float]
) -> None:
    _no_alert(cron, zone, delay_s, steps, start, start + timedelta(days=21))


def _no_alert(
    cron: str, zone: str, delay_s: int, steps: list[float], start: datetime, end: datetime
) -> None:
    schedule = ScheduleSpec(cron=cron, time_zone=zone, grace="10m")
    registry = registry_of({"penguins": pipeline_spec(schedules=(schedule,))})
    store = MemoryStore()
    slots = ticks(schedule, start - timedelta(days=3), end + timedelta(days=3))
    accept_all(store, registry, schedule, slots, timedelta(seconds=delay_s))
    publisher, last = pass_through(store, registry, start, end, steps)
    assert publisher.types() == []
    # every slot whose grace had passed by the last pass was checked (the checkpoint is not
    # rewritten by a pass that finds no new slot, so it may lag the pass itself)
    due = max(slot for slot in slots if slot + timedelta(minutes=10) <= last)
    checked = checkpoint(store, "penguins", "default")
    assert checked is not None and checked >= due


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cron=st.one_of(daily, hourly),
    zone=st.sampled_from(ZONES),
    pick=st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
    steps=st.lists(st.sampled_from([0.5, 1, 5, 24]), min_size=1, max_size=4),
)
def test_one_dropped_tick_is_reported_once_for_exactly_its_slot(
    cron: str, zone: str, pick: float, steps: list[float]
) -> None:
    schedule = ScheduleSpec(cron=cron, time_zone=zone, grace="10m")
    registry = registry_of({"penguins": pipeline_spec(schedules=(schedule,))})
    start, end = datetime(2026, 3, 20, tzinfo=UTC), datetime(2026, 4, 10, tzinfo=UTC)
    store = MemoryStore()
    if True:
        slots = ticks(schedule, start - timedelta(days=3), end + timedelta(days=3))
        ids = accept_all(store, registry, schedule, slots, timedelta(seconds=2))
        in_window = [s for s in slots if start < s <= end - timedelta(minutes=10)]
        dropped = in_window[int(pick * len(in_window))]
        store.delete(keys.ledger(ids[dropped], "trigger"))
        publisher, _last = pass_through(store, registry, start, end, steps)
        events = publisher.events()
        assert [e.event_type for e in events] == ["schedule.missed"]
        assert events[0].details["slot"] == dropped.isoformat()
        assert events[0].details["missing_runs"] == [ids[dropped]]
        assert events[0].run_id == ids[dropped]
