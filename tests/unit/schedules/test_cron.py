"""The registry's two cron dialects (mlrelay.schedules.cron): Cloud Scheduler's unix-cron and
KFP's six-field cron, refused field by field with the fix, and walked like their schedulers do."""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, timedelta

import pytest
from croniter import croniter
from hypothesis import given, settings
from hypothesis import strategies as st

from mlrelay.errors import PermanentError
from mlrelay.schedules.cron import CronError, parse_kfp_cron, parse_unix_cron
from mlrelay.schedules.slots import CronSchedule


@pytest.mark.parametrize(
    ("cron", "field", "says", "fix"),
    [
        ("0 6 L * *", "day-of-month", "uses L (the last day of the month)", "28-31"),
        ("0 6 15W * *", "day-of-month", "uses W", "list the days"),
        ("0 6 * * 5#2", "day-of-week", "uses # (the n-th weekday", "skip the weeks"),
        ("0 6 * * 5L", "day-of-week", "uses L (the last such weekday", "all but the last"),
        ("0 6 ? * *", "day-of-month", "uses ?", "write *"),
        ("@daily", "cron", "is a macro", "minute hour day-of-month month day-of-week"),
        ("0 6 * *", "cron", "has 4 field(s)", "'0 6 * * MON'"),
        ("61 * * * *", "minute", "has 61, outside 0-59", "use 0-59"),
        ("0 24 * * *", "hour", "outside 0-23", "use 0-23"),
        ("0 6 0 * *", "day-of-month", "outside 1-31", "use 1-31"),
        ("0 6 * 13 *", "month", "outside 1-12", "use 1-12"),
        ("0 6 * * 8", "day-of-week", "outside 0-7", "use 0-7"),
        ("5/15 * * * *", "minute", "steps from a single value", "write 5-59/15"),
        ("*/0 * * * *", "minute", "has the step '0'", "/1 or more"),
        ("50-10 * * * *", "minute", "runs backwards", "50-59,0-10"),
        ("0 6 * * FRI-MON", "day-of-week", "runs backwards", "FRI-SAT,SUN-MON"),
        ("0 6 * * mon", "day-of-week", "in lower case", "write MON"),
        ("0 6 * * JUL", "day-of-week", "'JUL', which is no value", "SUN, MON"),
        ("1,* * * * *", "minute", "mixes * into a list", "alone"),
        ("0 6 1 * */2", "day-of-week", "is ambiguous", "day-of-week 0-6/2"),
        ("0 6 */2 * MON", "day-of-month", "is ambiguous", "day-of-month 1-31/2"),
        ("0 6 30 2 *", "day-of-month", "never falls in month '2'", "February has 29"),
    ],
)
def test_a_cron_cloud_scheduler_refuses_names_its_field_and_the_fix(
    cron: str, field: str, says: str, fix: str
) -> None:
    with pytest.raises(CronError) as caught:
        parse_unix_cron(cron)
    assert caught.value.field == field
    assert says in caught.value.problem
    assert fix in caught.value.fix


@pytest.mark.parametrize(
    "cron",
    [
        *("0 6 * * 1", "*/15 0-23/2 * * *", "0 6 1,15 * MON-FRI", "0 6 * JAN-MAR SUN"),
        *("0 0 29 2 *", "0 6 * * 7", "0 6 * * 0-7", "0 6 31 1,3,5 *", "0 6 */2 * *"),
        "0 6 * * */2",
    ],
)
def test_what_the_documented_format_allows_is_accepted(cron: str) -> None:
    assert parse_unix_cron(cron).text == cron


def test_the_trigger_refuses_a_tick_whose_cron_is_not_unix_cron() -> None:
    with pytest.raises(PermanentError) as caught:
        CronSchedule("0 6 L * *", "UTC")
    assert caught.value.field == "schedule.cron"
    assert "day-of-month 'L' uses L" in caught.value.problem


@pytest.mark.parametrize(
    ("cron", "field", "says"),
    [
        ("0 0 6 * * 7", "day-of-week", "outside 0-6"),  # robfig: 0-6 only
        ("0 0 6 L * *", "day-of-month", "uses L"),
        ("0 0 6 * * 1#2", "day-of-week", "uses #"),
        ("? 0 6 * * 1", "second", "uses ?"),
        ("0 6 * * 1", "cron", "has 5 field(s); KFP's cron needs 6 fields"),
        ("@every 1h", "cron", "is a macro"),
        ("60 0 6 * * 1", "second", "outside 0-59"),
        ("0 0 6 31 4 *", "day-of-month", "never falls"),
    ],
)
def test_a_kfp_cron_is_checked_field_by_field(cron: str, field: str, says: str) -> None:
    with pytest.raises(CronError) as caught:
        parse_kfp_cron(cron)
    assert caught.value.field == field
    assert says in caught.value.problem


def test_a_kfp_cron_is_read_as_kfp_reads_it_and_can_be_walked() -> None:
    # `?` is `*`, names in any case, `n/step` runs to the end of the field
    parsed = parse_kfp_cron("30 5/20 6 ? * mon")
    assert parsed.field("minute").values == {5, 25, 45}
    times = parsed.fire_times(datetime(2026, 12, 1, tzinfo=UTC))  # a Tuesday
    assert [next(times) for _ in range(4)] == [
        datetime(2026, 12, 7, 6, m, 30, tzinfo=UTC) for m in (5, 25, 45)
    ] + [datetime(2026, 12, 14, 6, 5, 30, tzinfo=UTC)]
    # a */n day field counts as `*` for KFP: the day fields combine with AND
    both = parse_kfp_cron("0 0 0 */2 * 1")
    assert not both.day_or
    first = next(both.fire_times(datetime(2026, 12, 1, tzinfo=UTC)))
    assert first == datetime(2026, 12, 7, tzinfo=UTC)  # the 7th: odd and a Monday


def test_slots_walk_the_fields_as_read_where_croniter_misreads_the_text() -> None:
    # found by the property below: croniter reads the day-of-week range 7-7 as every day
    start = datetime(2026, 1, 1)  # a Thursday
    assert croniter("0 0 * * 7-7", start).get_next(datetime) == datetime(2026, 1, 2)
    sunday = CronSchedule("0 0 * * 7-7", "UTC")
    assert sunday.next_after(start.replace(tzinfo=UTC)) == datetime(2026, 1, 4, tzinfo=UTC)


# --- property: what the checks accept is walked exactly as the cron means it ---

NAMES = {
    "month": {n: name.upper() for n, name in enumerate(calendar.month_abbr) if name},
    "day-of-week": dict(enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"])),
}


@st.composite
def field(draw: st.DrawFn, name: str, low: int, high: int) -> tuple[str, set[int], bool]:
    """A field's text, the values it means and whether it starts with `*`."""
    kind = draw(st.sampled_from(["star", "step", "list"]))
    if kind == "star":
        return "*", set(range(low, high + 1)), True
    if kind == "step":
        step = draw(st.integers(1, high - low + 2))
        return f"*/{step}", set(range(low, high + 1, step)), True
    items, values = [], set()
    for _ in range(draw(st.integers(1, 3))):
        a = draw(st.integers(low, high))
        b = draw(st.integers(a, high))
        step = draw(st.integers(1, 5))
        words = NAMES.get(name, {})
        use_names = bool(words) and b in words and a in words and draw(st.booleans())
        text_a, text_b = (words[a], words[b]) if use_names else (str(a), str(b))
        shape = draw(st.sampled_from(["one", "range", "range-step"]))
        if shape == "one":
            items.append(text_a)
            values.add(a)
        elif shape == "range":
            items.append(f"{text_a}-{text_b}")
            values |= set(range(a, b + 1))
        else:
            items.append(f"{text_a}-{text_b}/{step}")
            values |= set(range(a, b + 1, step))
    return ",".join(items), values, False


def oracle(
    fields: dict[str, tuple[str, set[int], bool]], start: datetime, count: int, *, seconds: bool
) -> list[datetime]:
    """The next `count` fire times after `start`, walking day by day (cron(5) semantics: the
    day fields combine with OR unless one starts with `*`)."""
    dom, dow = fields["day-of-month"], fields["day-of-week"]
    weekdays = {v % 7 for v in dow[1]}
    either = not (dom[2] or dow[2])
    secs = sorted(fields["second"][1]) if seconds else [0]
    found: list[datetime] = []
    day = start.date()
    while len(found) < count and day < date(start.year + 9, 1, 1):
        in_dom, in_dow = day.day in dom[1], (day.isoweekday() % 7) in weekdays
        if day.month in fields["month"][1] and (
            (in_dom or in_dow) if either else (in_dom and in_dow)
        ):
            for h in sorted(fields["hour"][1]):
                for m in sorted(fields["minute"][1]):
                    for s in secs:
                        moment = datetime(day.year, day.month, day.day, h, m, s)
                        if moment > start and len(found) < count:
                            found.append(moment)
        day += timedelta(days=1)
    return found


UNIX = [("minute", 0, 59), ("hour", 0, 23), ("day-of-month", 1, 31), ("month", 1, 12)]


@settings(max_examples=100, deadline=None)
@given(
    data=st.data(),
    start=st.datetimes(datetime(2026, 1, 1), datetime(2030, 12, 31)).map(
        lambda d: d.replace(second=0, microsecond=0)
    ),
)
def test_an_accepted_unix_cron_is_walked_by_croniter_as_cron_means_it(
    data: st.DataObject, start: datetime
) -> None:
    fields = {name: data.draw(field(name, low, high)) for name, low, high in UNIX}
    fields["day-of-week"] = data.draw(field("day-of-week", 0, 7))
    text = " ".join(fields[n][0] for n in [*(u[0] for u in UNIX), "day-of-week"])
    expected = oracle(fields, start, 5, seconds=False)
    dom, dow = fields["day-of-month"][0], fields["day-of-week"][0]
    ambiguous = (dom.startswith("*/") and not dow.startswith("*")) or (
        dow.startswith("*/") and not dom.startswith("*")
    )
    if ambiguous or not expected:  # a */n beside a restricted day field; a date that never comes
        with pytest.raises(CronError):
            parse_unix_cron(text)
        return
    assert croniter.is_valid(text)  # croniter takes the text too, though it may misread it
    times = parse_unix_cron(text).fire_times(start)
    assert [next(times) for _ in expected] == expected


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    start=st.datetimes(datetime(2026, 1, 1), datetime(2030, 12, 31)).map(
        lambda d: d.replace(microsecond=0)
    ),
)
def test_an_accepted_kfp_cron_is_walked_as_kfp_reads_it(
    data: st.DataObject, start: datetime
) -> None:
    fields = {"second": data.draw(field("second", 0, 59))}
    fields |= {name: data.draw(field(name, low, high)) for name, low, high in UNIX}
    fields["day-of-week"] = data.draw(field("day-of-week", 0, 6))
    order = ["second", *(u[0] for u in UNIX), "day-of-week"]
    text = " ".join(fields[n][0] for n in order)
    expected = oracle(fields, start, 5, seconds=True)
    if not expected:
        with pytest.raises(CronError):
            parse_kfp_cron(text)
        return
    times = parse_kfp_cron(text).fire_times(start)
    assert [next(times) for _ in expected] == expected
