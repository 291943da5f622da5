"""Schedule slots: the instants a cron in a time zone fires, and the slot a tick stands for.

croniter walks the cron (its fields as `mlrelay.schedules.cron` reads them) over *wall-clock*
(naive) times, where it has no DST ambiguity; this module maps each wall time to instants with an
explicit policy:

- a wall time that does not exist (clocks spring forward) fires once, at the end of the gap;
- a wall time that happens twice (clocks fall back) fires once, at its first occurrence, unless
  the hour field is `*` or a `*/n` step, when it fires at both (Vixie cron's rule: an hourly job
  keeps running hourly, a daily job still runs once a day).

The slot of a tick is the latest fire instant at or before the message's publish time (plus a
small allowance for clock skew). Pub/Sub redeliveries keep the publish time, so every delivery of
one tick names the same slot, however late it arrives.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

from croniter import croniter

from mlrelay.errors import PermanentError
from mlrelay.schedules.cron import CronError, ParsedCron, parse_unix_cron

# wider than any offset change between two wall times, so the scan never misses an instant
_WINDOW = timedelta(hours=3)
# a tick published this much before its slot (clock skew) still counts for that slot
EARLY_ALLOWANCE = timedelta(seconds=5)


@dataclass(frozen=True)
class CronSchedule:
    cron: str
    time_zone: str

    def __post_init__(self) -> None:
        try:
            parse_unix_cron(self.cron)  # what Cloud Scheduler takes
        except CronError as exc:
            where = "" if exc.field == "cron" else f"{exc.field} "
            raise PermanentError("schedule.cron", where + exc.problem, exc.fix) from None
        try:
            ZoneInfo(self.time_zone)
        except (ValueError, KeyError) as exc:
            raise PermanentError(
                "schedule.time_zone",
                f"{self.time_zone!r} is not an IANA zone ({exc})",
                "e.g. Europe/Amsterdam or UTC",
            ) from None

    @cached_property
    def _parsed(self) -> ParsedCron:
        return parse_unix_cron(self.cron)

    def _walker(self, wall: datetime) -> Any:
        """croniter over the checked fields (not the text: croniter misreads some, e.g. `7-7`)."""
        parsed = self._parsed
        return croniter(parsed.croniter_expression, wall, day_or=parsed.day_or)

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    @cached_property
    def _both_folds(self) -> bool:
        return self.cron.split()[1].startswith("*")

    def _walls(self, start: datetime, *, backwards: bool) -> Iterator[datetime]:
        """Matching naive wall times from `start` (exclusive), forwards or backwards."""
        walker = self._walker(start)
        step = walker.get_prev if backwards else walker.get_next
        while True:
            yield step(datetime)

    def instants(self, wall: datetime) -> list[datetime]:
        """The UTC instants at which the wall time `wall` fires (0 never happens: see policy)."""
        first = wall.replace(tzinfo=self.zone, fold=0)
        second = wall.replace(tzinfo=self.zone, fold=1)
        if first.utcoffset() == second.utcoffset():
            return [first.astimezone(UTC)]
        early, late = sorted([first.astimezone(UTC), second.astimezone(UTC)])
        if early.astimezone(self.zone).replace(tzinfo=None) == wall:  # repeated: fall back
            return [early, late] if self._both_folds else [early]
        return [self._transition(early, late)]  # skipped: spring forward

    def _transition(self, low: datetime, high: datetime) -> datetime:
        """The first instant in (low, high] on the far side of the gap (second precision)."""
        target = high.astimezone(self.zone).utcoffset()
        lo, hi = 0, int((high - low).total_seconds())
        while lo < hi:
            mid = (lo + hi) // 2
            if (low + timedelta(seconds=mid)).astimezone(self.zone).utcoffset() == target:
                hi = mid
            else:
                lo = mid + 1
        return low + timedelta(seconds=lo)

    def _wall(self, moment: datetime) -> datetime:
        return moment.astimezone(self.zone).replace(tzinfo=None)

    def _steady_offset(self, moment: datetime) -> timedelta | None:
        """The zone's offset if it stays the same for a window either side of `moment`."""
        offsets = {(moment + d).astimezone(self.zone).utcoffset() for d in (-_WINDOW, _WINDOW)}
        offset = moment.astimezone(self.zone).utcoffset()
        return offset if offsets == {offset} else None

    def slot_at(self, moment: datetime) -> datetime:
        """The latest fire instant at or before `moment` (UTC)."""
        moment = _aware(moment)
        offset = self._steady_offset(moment)
        if offset is not None:  # fast path: no clock change near, one wall time = one instant
            wall = self._wall(moment).replace(second=0, microsecond=0)
            found: datetime = self._walker(wall + timedelta(minutes=1)).get_prev(datetime)
            if found >= wall - _WINDOW:
                return (found - offset).replace(tzinfo=UTC)
        best: datetime | None = None
        best_wall: datetime | None = None
        for wall in self._walls(self._wall(moment) + _WINDOW, backwards=True):
            if best_wall is not None and wall < best_wall - _WINDOW:
                break
            for instant in self.instants(wall):
                if instant <= moment and (best is None or instant > best):
                    best, best_wall = instant, wall
        assert best is not None
        return best

    def next_after(self, moment: datetime) -> datetime:
        """The earliest fire instant strictly after `moment` (UTC)."""
        moment = _aware(moment)
        offset = self._steady_offset(moment)
        if offset is not None:
            found: datetime = self._walker(self._wall(moment)).get_next(datetime)
            if found <= self._wall(moment) + _WINDOW:
                return (found - offset).replace(tzinfo=UTC)
        best: datetime | None = None
        best_wall: datetime | None = None
        for wall in self._walls(self._wall(moment) - _WINDOW, backwards=False):
            if best_wall is not None and wall > best_wall + _WINDOW:
                break
            for instant in self.instants(wall):
                if instant > moment and (best is None or instant < best):
                    best, best_wall = instant, wall
        assert best is not None
        return best

    def between(self, start: datetime, end: datetime) -> list[datetime]:
        """Every fire instant in [start, end], in order, each once."""
        start, end = _aware(start), _aware(end)
        found: set[datetime] = set()
        for wall in self._walls(self._wall(start) - _WINDOW, backwards=False):
            if wall > self._wall(end) + _WINDOW:
                break
            found.update(i for i in self.instants(wall) if start <= i <= end)
        return sorted(found)

    def slot_of_tick(self, publish_time: datetime) -> datetime:
        """The slot a scheduler tick published at `publish_time` stands for."""
        return self.slot_at(_aware(publish_time) + EARLY_ALLOWANCE)


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("slot computations need time-zone-aware datetimes")
    return moment.astimezone(UTC)
