"""The two cron dialects of the registry, checked field by field and parsed so they can be walked.

**Cloud Scheduler's unix-cron** (a schedule's `cron`). Source: "Cron job format and time zone",
https://cloud.google.com/scheduler/docs/configuring/cron-job-schedules (read 2026-12-01), which
bases it on unix-cron (Vixie cron, cron(5)): five fields, minute (0-59) hour (0-23) day-of-month
(1-31) month (1-12 or JAN-DEC) day-of-week (0-6 or SUN-SAT, 7 is Sunday too); names are the first
three letters in capitals; `*` is first-last, `a-b` an inclusive range, `/n` after a range or `*`
a step, `,` a list. The page says `L` is not supported; `W`, `#`, `?` and @-macros are not part of
the format (nor of cron(5)). Day-of-month and day-of-week combine as an OR unless one of them is
`*`; whether a `*/n` step counts as `*` there differs between cron implementations (Vixie cron:
yes; croniter, which mlrelay walks slots with: no), so such a pair is refused as ambiguous.

**KFP's recurring-run cron** (`kfp.recurring.cron`). KFP's ScheduledWorkflow controller parses it
with robfig/cron v1 `cron.Parse` (kubeflow/pipelines
backend/src/crd/controller/scheduledworkflow/util/cron_schedule.go; robfig/cron parser.go and
spec.go): six fields, second (0-59) first, then as above but day-of-week 0-6 only; names in any
case; `?` stands for `*` in day-of-month and day-of-week; `n/step` means `n-max/step`; the day
fields combine as an AND when either starts with `*` or `?`, else an OR. mlrelay asks for the
six fields explicitly, so the descriptors robfig also takes (`@daily`, `@every 1h`) are refused.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from mlrelay.errors import ExplainedError

Dialect = Literal["unix", "kfp"]

_MONTHS = {name.upper(): n for n, name in enumerate(calendar.month_abbr) if name}
_DAYS = {"SUN": 0, "MON": 1, "TUE": 2, "WED": 3, "THU": 4, "FRI": 5, "SAT": 6}
# the most days each month can have (February: 29, in a leap year)
_MONTH_DAYS = {m: 29 if m == 2 else calendar.monthrange(2001, m)[1] for m in range(1, 13)}


@dataclass(frozen=True)
class _Bounds:
    name: str
    low: int
    high: int
    names: dict[str, int] | None = None


_SECOND = _Bounds("second", 0, 59)
_MINUTE = _Bounds("minute", 0, 59)
_HOUR = _Bounds("hour", 0, 23)
_DOM = _Bounds("day-of-month", 1, 31)
_MONTH = _Bounds("month", 1, 12, _MONTHS)
_UNIX_FIELDS = (_MINUTE, _HOUR, _DOM, _MONTH, _Bounds("day-of-week", 0, 7, _DAYS))
_KFP_FIELDS = (_SECOND, _MINUTE, _HOUR, _DOM, _MONTH, _Bounds("day-of-week", 0, 6, _DAYS))

_UNIX_EXAMPLE = "e.g. '0 6 * * MON' for 06:00 every Monday"
_KFP_EXAMPLE = "e.g. '0 0 6 * * 1' for 06:00:00 every Monday"


class CronError(ExplainedError, ValueError):
    """A cron its scheduler would refuse or misread: `field` names the cron field (`minute`,
    `day-of-week`, ... or `cron` for the whole text), `problem` shows its value.

    A `ValueError` too, so a pydantic validator turns it into the registry's own problem list."""


@dataclass(frozen=True)
class CronField:
    name: str
    text: str
    values: frozenset[int]
    star: bool  # starts with `*` (or KFP's `?`): unrestricted when the day fields combine


@dataclass(frozen=True)
class ParsedCron:
    """A checked cron: each field's values, and how to walk it with croniter."""

    text: str
    dialect: Dialect
    fields: tuple[CronField, ...]

    def field(self, name: str) -> CronField:
        return next(f for f in self.fields if f.name == name)

    @property
    def day_or(self) -> bool:
        """Day-of-month and day-of-week combine as an OR (else an AND)."""
        return not (self.field("day-of-month").star or self.field("day-of-week").star)

    @property
    def croniter_expression(self) -> str:
        """The same schedule in croniter's syntax (a seconds field goes last there)."""
        parts = {f.name: ("*" if f.text in ("*", "?") else _listed(f.values)) for f in self.fields}
        order = ["minute", "hour", "day-of-month", "month", "day-of-week"]
        if self.dialect == "kfp":
            order.append("second")
        return " ".join(parts[name] for name in order)

    def fire_times(self, after: datetime) -> Iterator[datetime]:
        """Every fire time strictly after `after`, in its zone (KFP: UTC on a default install)."""
        from croniter import croniter

        walker = croniter(self.croniter_expression, after, day_or=self.day_or)
        while True:
            yield walker.get_next(datetime)


def parse_unix_cron(text: str) -> ParsedCron:
    """A Cloud Scheduler unix-cron, checked; `CronError` names the field and the fix."""
    return _parse(text, "unix")


def parse_kfp_cron(text: str) -> ParsedCron:
    """A KFP recurring-run cron (six fields, seconds first), checked; `CronError` as above."""
    return _parse(text, "kfp")


def _listed(values: frozenset[int]) -> str:
    return ",".join(str(v) for v in sorted(values))


def _parse(text: str, dialect: Dialect) -> ParsedCron:
    bounds = _UNIX_FIELDS if dialect == "unix" else _KFP_FIELDS
    example = _UNIX_EXAMPLE if dialect == "unix" else _KFP_EXAMPLE
    layout = " ".join(b.name for b in bounds)
    if text.strip().startswith("@"):
        raise CronError(
            "cron",
            f"{text!r} is a macro, not {len(bounds)} fields",
            f"write the fields out: {layout}, {example}",
        )
    parts = text.split()
    if len(parts) != len(bounds):
        whose = "Cloud Scheduler's unix-cron" if dialect == "unix" else "KFP's cron"
        raise CronError(
            "cron",
            f"{text!r} has {len(parts)} field(s); {whose} needs {len(bounds)} fields: {layout}",
            example,
        )
    fields = tuple(_field(part, b, dialect) for part, b in zip(parts, bounds, strict=True))
    parsed = ParsedCron(text, dialect, fields)
    _check_days(parsed)
    return parsed


def _field(text: str, bounds: _Bounds, dialect: Dialect) -> CronField:
    items = text.split(",")
    star = items[0] in ("*", "?") or items[0].startswith(("*/", "?/"))
    if len(items) > 1 and any(i.startswith(("*", "?")) for i in items):
        raise _problem(bounds, text, "mixes * into a list", "write * (or */n) alone")
    values: set[int] = set()
    for item in items:
        values |= _item(item, text, bounds, dialect)
    if bounds.name == "day-of-week":
        values = {v % 7 for v in values}  # 7 is Sunday, like 0
    return CronField(bounds.name, text, frozenset(values), star)


def _item(item: str, text: str, bounds: _Bounds, dialect: Dialect) -> set[int]:
    base, slash, step_text = item.partition("/")
    step = 1
    if slash:
        if not step_text.isdigit() or int(step_text) == 0:
            raise _problem(bounds, text, f"has the step {step_text!r}", "a step is /1 or more")
        step = int(step_text)
    if base in ("*", "?"):
        day_field = bounds.name in ("day-of-month", "day-of-week")
        if base == "?" and (dialect == "unix" or not day_field):
            where = "Cloud Scheduler's unix-cron" if dialect == "unix" else f"KFP's {bounds.name}"
            raise _problem(bounds, text, f"uses ?, which {where} does not have", "write *")
        return set(range(bounds.low, bounds.high + 1, step))
    low_text, dash, high_text = base.partition("-")
    low = _value(low_text, text, bounds, dialect)
    if dash:
        high = _value(high_text, text, bounds, dialect)
    elif slash and dialect == "kfp":
        high = bounds.high  # robfig: `n/step` is `n-max/step`
    elif slash:
        raise _problem(
            bounds,
            text,
            f"steps from a single value ({item!r})",
            f"a step follows a range or *: write {low}-{bounds.high}/{step}",
        )
    else:
        high = low
    if low > high:
        top, bottom = min(bounds.high, 6 if bounds.names is _DAYS else bounds.high), bounds.low
        if not low_text.isdigit():  # named: wrap with names too
            by_value = {v: k for k, v in (bounds.names or {}).items()}
            top_text, bottom_text = by_value[top], by_value[bottom]
        else:
            top_text, bottom_text = str(top), str(bottom)
        upper = low_text if low == top else f"{low_text}-{top_text}"
        lower = high_text if high == bottom else f"{bottom_text}-{high_text}"
        raise _problem(
            bounds,
            text,
            f"has the range {base!r}, which runs backwards",
            f"put the smaller value first; to wrap around, list both parts: {upper},{lower}",
        )
    return set(range(low, high + 1, step))


def _value(token: str, text: str, bounds: _Bounds, dialect: Dialect) -> int:
    if token.isdigit():
        value = int(token)
        if not bounds.low <= value <= bounds.high:
            fix = f"use {bounds.low}-{bounds.high}"
            if bounds.name == "day-of-week" and value == 7:
                fix = "KFP's day-of-week runs 0-6: write 0 or SUN for Sunday"
            raise _problem(bounds, text, f"has {value}, outside {bounds.low}-{bounds.high}", fix)
        return value
    names = bounds.names or {}
    if token in names or (dialect == "kfp" and token.upper() in names):
        return names[token.upper()]
    if token.upper() in names:
        raise _problem(
            bounds,
            text,
            f"has the name {token!r} in lower case",
            f"Cloud Scheduler documents names in capitals: write {token.upper()}",
        )
    raise _problem(bounds, text, *_unsupported(token, bounds, dialect))


def _unsupported(token: str, bounds: _Bounds, dialect: Dialect) -> tuple[str, str]:
    """Why `token` is no value of the field, and the fix, naming the Quartz features people try."""
    where = "Cloud Scheduler's unix-cron" if dialect == "unix" else "KFP's cron"
    day_of_month = bounds.name == "day-of-month"
    if "#" in token:
        return (
            f"uses # (the n-th weekday of the month), which {where} does not support",
            "run on that weekday, e.g. MON, and let the pipeline skip the weeks it does not want",
        )
    numbered = token[:-1].isdigit() or token[:-1] in ("", "L")  # 15W, LW, 5L, L
    if day_of_month and token.endswith("W") and numbered:
        return (
            f"uses W (the weekday nearest a date), which {where} does not support",
            "list the days it can fall on, e.g. 1-3 for the first weekday, and let the pipeline "
            "skip the others",
        )
    if token.endswith("L") and numbered:
        if not day_of_month:
            return (
                f"uses L (the last such weekday of the month), which {where} does not support",
                "run on that weekday and let the pipeline skip all but the last of the month",
            )
        return (
            f"uses L (the last day of the month), which {where} does not support",
            "list the days it can be, e.g. 28-31, and let the pipeline skip the others; "
            "or run on day 1 of the next month",
        )
    if bounds.names:
        known = ", ".join(bounds.names)
        return (f"has {token!r}, which is no value", f"use {bounds.low}-{bounds.high} or {known}")
    return (f"has {token!r}, which is no value", f"use numbers {bounds.low}-{bounds.high}")


def _problem(bounds: _Bounds, text: str, problem: str, fix: str) -> CronError:
    return CronError(bounds.name, f"{text!r} {problem}", fix)


def _check_days(parsed: ParsedCron) -> None:
    dom, month, dow = (parsed.field(n) for n in ("day-of-month", "month", "day-of-week"))
    if parsed.dialect == "unix":
        restricted = {"day-of-month": not dom.star, "day-of-week": not dow.star}
        for stepped, other in ((dom, dow), (dow, dom)):
            if stepped.text.startswith("*/") and restricted[other.name]:
                raise CronError(
                    stepped.name,
                    f"{stepped.text!r} with {other.name} {other.text!r} is ambiguous: cron "
                    "implementations disagree whether a */n step counts as * (then the two day "
                    "fields combine with AND) or not (OR)",
                    f"for the OR write the step as a range, {stepped.name} "
                    f"{_range_of(stepped.name)}/{stepped.text.partition('/')[2]}; or set "
                    f"{other.name} to *",
                )
    if parsed.day_or:
        return  # some day of the week always comes
    if any(day <= _MONTH_DAYS[m] for m in month.values for day in dom.values):
        return
    raise CronError(
        "day-of-month",
        f"{dom.text!r} never falls in month {month.text!r}: the job would never run",
        "pick days every chosen month has; February has 29 at most",
    )


def _range_of(name: str) -> str:
    return "1-31" if name == "day-of-month" else "0-6"
