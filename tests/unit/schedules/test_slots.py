"""Schedule slots across time zones and DST changes, against an oracle that walks every minute."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlrelay.errors import PermanentError
from mlrelay.schedules.slots import EARLY_ALLOWANCE, CronSchedule

ZONES = [
    "UTC",
    "Europe/Amsterdam",
    "America/New_York",
    "America/Sao_Paulo",
    "Australia/Lord_Howe",  # DST of 30 minutes
    "Asia/Kolkata",
    "Pacific/Chatham",
    "America/Santiago",
]
DST_ZONES = ["Europe/Amsterdam", "America/New_York", "Australia/Lord_Howe", "America/Santiago"]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def test_a_daily_slot_in_the_skipped_hour_fires_once_at_the_end_of_the_gap() -> None:
    daily = CronSchedule("30 2 * * *", "Europe/Amsterdam")  # 2026-03-29 02:00 -> 03:00
    assert daily.between(utc(2026, 3, 27), utc(2026, 3, 31)) == [
        utc(2026, 3, 27, 1, 30),
        utc(2026, 3, 28, 1, 30),
        utc(2026, 3, 29, 1, 0),  # 03:00 CEST, the first minute after the gap
        utc(2026, 3, 30, 0, 30),
    ]


def test_a_daily_slot_in_the_repeated_hour_fires_once_but_an_hourly_one_fires_twice() -> None:
    daily = CronSchedule("30 2 * * *", "Europe/Amsterdam")  # 2026-10-25 03:00 -> 02:00
    assert daily.between(utc(2026, 10, 24), utc(2026, 10, 26)) == [
        utc(2026, 10, 24, 0, 30),
        utc(2026, 10, 25, 0, 30),  # 02:30 CEST only, not 02:30 CET again
    ]
    hourly = CronSchedule("30 * * * *", "Europe/Amsterdam")
    assert hourly.between(utc(2026, 10, 24, 23), utc(2026, 10, 25, 2)) == [
        utc(2026, 10, 24, 23, 30),
        utc(2026, 10, 25, 0, 30),  # 02:30 CEST
        utc(2026, 10, 25, 1, 30),  # 02:30 CET
    ]


def test_the_same_cron_in_two_zones_names_different_instants() -> None:
    moment = utc(2026, 7, 1, 12)
    assert CronSchedule("0 6 * * *", "UTC").slot_at(moment) == utc(2026, 7, 1, 6)
    assert CronSchedule("0 6 * * *", "Asia/Kolkata").slot_at(moment) == utc(2026, 7, 1, 0, 30)
    assert CronSchedule("0 6 * * *", "America/New_York").slot_at(moment) == utc(2026, 7, 1, 10)


@pytest.mark.parametrize(
    ("cron", "zone", "field"),
    [("0 6 * *", "UTC", "schedule.cron"), ("0 6 * * *", "Mars/Olympus", "schedule.time_zone")],
)
def test_a_bad_cron_or_zone_is_refused_with_the_field(cron: str, zone: str, field: str) -> None:
    with pytest.raises(PermanentError) as caught:
        CronSchedule(cron, zone)
    assert caught.value.field == field


# --- an oracle: walk every minute of a window and apply the documented policy directly ---


@st.composite
def crons(draw: st.DrawFn, near_hour: int | None = None) -> tuple[str, set[int], set[int]]:
    """A cron over minutes and hours (a list, `*` or a `*/n` step), and the sets it matches;
    listed hours cluster around `near_hour` when given (the local hour of a clock change)."""
    minutes = draw(st.sets(st.integers(0, 59), min_size=1, max_size=4))
    shape = draw(st.sampled_from(["list", "star", "step"]))
    if shape == "list":
        if near_hour is None:
            hours = draw(st.sets(st.integers(0, 23), min_size=1, max_size=4))
        else:
            near = st.integers(-2, 2).map(lambda k: (near_hour + k) % 24)
            hours = draw(st.sets(near, min_size=1, max_size=3))
        hour_field = ",".join(map(str, sorted(hours)))
    elif shape == "star":
        hours, hour_field = set(range(24)), "*"
    else:
        step = draw(st.integers(2, 5))
        hours, hour_field = set(range(0, 24, step)), f"*/{step}"
    cron = f"{','.join(map(str, sorted(minutes)))} {hour_field} * * *"
    return cron, minutes, hours


def oracle(
    cron: str, minutes: set[int], hours: set[int], zone: str, start: datetime, end: datetime
) -> list[datetime]:
    tz = ZoneInfo(zone)
    both = cron.split()[1].startswith("*")
    fired: list[datetime] = []
    seen_walls: set[datetime] = set()
    moment = start
    previous_wall: datetime | None = None
    while moment <= end:
        wall = moment.astimezone(tz).replace(tzinfo=None)
        matches = wall.minute in minutes and wall.hour in hours
        if matches and (wall not in seen_walls or both):
            fired.append(moment)
        # walls skipped by a jump forward fire at the first minute after the jump
        if previous_wall is not None and wall - previous_wall > timedelta(minutes=1):
            skipped = previous_wall + timedelta(minutes=1)
            while skipped < wall:
                if skipped.minute in minutes and skipped.hour in hours and moment not in fired:
                    fired.append(moment)
                skipped += timedelta(minutes=1)
        seen_walls.add(wall)
        previous_wall = wall
        moment += timedelta(minutes=1)
    return sorted(set(fired))


def transitions(zone: str, year: int) -> list[datetime]:
    tz, found = ZoneInfo(zone), []
    moment = utc(year, 1, 1)
    while moment.year == year:
        after = moment + timedelta(hours=1)
        if moment.astimezone(tz).utcoffset() != after.astimezone(tz).utcoffset():
            found.append(after.replace(minute=0))
        moment = after
    return found


@given(
    data=st.data(),
    zone=st.sampled_from(DST_ZONES),
    year=st.integers(2024, 2030),
    which=st.integers(0, 1),
)
def test_fire_instants_around_a_clock_change_match_the_minute_by_minute_oracle(
    data: st.DataObject, zone: str, year: int, which: int
) -> None:
    change = transitions(zone, year)[which]
    local_hour = (change - timedelta(minutes=1)).astimezone(ZoneInfo(zone)).hour
    text, minutes, hours = data.draw(crons(near_hour=local_hour))
    start, end = change - timedelta(hours=5), change + timedelta(hours=5)
    schedule = CronSchedule(text, zone)
    expected = oracle(text, minutes, hours, zone, start, end)
    # the oracle cannot see walls skipped just before `start`: compare away from the edges
    inner = [t for t in expected if start + timedelta(hours=3) <= t <= end - timedelta(hours=3)]
    got = [
        t
        for t in schedule.between(start, end)
        if start + timedelta(hours=3) <= t <= end - timedelta(hours=3)
    ]
    assert got == inner


@given(
    cron=crons(),
    zone=st.sampled_from(ZONES),
    moment=st.datetimes(datetime(2024, 1, 1), datetime(2030, 12, 31), timezones=st.just(UTC)),
)
def test_the_slot_is_the_latest_fire_at_or_before_the_moment(
    cron: tuple[str, set[int], set[int]], zone: str, moment: datetime
) -> None:
    schedule = CronSchedule(cron[0], zone)
    slot = schedule.slot_at(moment)
    following = schedule.next_after(slot)
    assert slot <= moment < following
    assert schedule.slot_at(slot) == slot
    assert schedule.between(slot, following) == [slot, following]
    assert schedule.next_after(moment) == following


@given(
    cron=crons(),
    zone=st.sampled_from(ZONES),
    moment=st.datetimes(datetime(2024, 1, 1), datetime(2030, 12, 31), timezones=st.just(UTC)),
    lateness=st.floats(0, 1),
)
def test_every_delivery_of_one_tick_maps_to_its_slot_however_late_it_is_published(
    cron: tuple[str, set[int], set[int]], zone: str, moment: datetime, lateness: float
) -> None:
    """A tick published at its slot, or late (up to the next slot), or a little early."""
    schedule = CronSchedule(cron[0], zone)
    slot = schedule.next_after(moment)
    gap = schedule.next_after(slot) - slot
    late = slot + (gap - EARLY_ALLOWANCE - timedelta(microseconds=1)) * lateness
    assert schedule.slot_of_tick(late) == slot
    assert schedule.slot_of_tick(slot - EARLY_ALLOWANCE) == slot


@given(
    zone=st.sampled_from(ZONES),
    hour=st.integers(0, 23),
    minute=st.integers(0, 59),
    year=st.integers(2024, 2030),
)
def test_a_daily_cron_fires_exactly_once_on_every_local_day_of_the_year(
    zone: str, hour: int, minute: int, year: int
) -> None:
    tz = ZoneInfo(zone)
    schedule = CronSchedule(f"{minute} {hour} * * *", zone)
    fired = schedule.between(utc(year, 1, 2), utc(year, 12, 30))
    days = [f.astimezone(tz).date() for f in fired]
    assert len(days) == len(set(days))
    first, last = days[0], days[-1]
    assert len(days) == (last - first).days + 1
    assert first <= date(year, 1, 3) and last >= date(year, 12, 28)
