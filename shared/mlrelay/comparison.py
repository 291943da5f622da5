"""A run against its baseline (the pipeline's last good run): metric deltas, rows, duration and
the schema diff between the two snapshots. The notifier's card and `mlrelay runs compare` show
the same `Comparison`.

The arithmetic never divides by zero and never prints `nan`: a figure only one side has is
"new" or "gone", a change from a zero baseline has no percentage ("n/a"), and a value that is
not finite (NaN, inf) compares as "n/a".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from mlrelay.history import RunSummary

Direction = Literal["up", "down", "same", "new", "gone", "n/a"]
ARROW: dict[Direction, str] = {
    "up": "▲",
    "down": "▼",
    "same": "=",
    "new": "new",
    "gone": "gone",
    "n/a": "n/a",
}
SAME_WITHIN = 1e-12  # changes below this are rounding, not a change


@dataclass(frozen=True)
class Delta:
    """One figure before (the baseline) and after (this run)."""

    name: str
    before: float | None
    after: float | None
    change: float | None  # after - before, when both are finite numbers
    percent: float | None  # change / |before| * 100, when before is finite and not zero
    direction: Direction

    @property
    def arrow(self) -> str:
        return ARROW[self.direction]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "before": self.before,
            "after": self.after,
            "change": self.change,
            "percent": self.percent,
            "direction": self.direction,
        }


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def delta(name: str, before: float | None, after: float | None) -> Delta:
    """`after` against `before`; either may be missing (None) or not finite."""
    if before is None and after is None:
        return Delta(name, None, None, None, None, "n/a")
    if before is None:
        return Delta(name, None, after, None, None, "new")
    if after is None:
        return Delta(name, before, None, None, None, "gone")
    if not (_finite(before) and _finite(after)):
        return Delta(name, before, after, None, None, "n/a")
    change = after - before
    if abs(change) <= SAME_WITHIN * max(1.0, abs(before), abs(after)):
        return Delta(name, before, after, 0.0, 0.0 if before != 0 else None, "same")
    percent = change / abs(before) * 100 if before != 0 else None
    if percent is not None and not math.isfinite(percent):  # a subnormal baseline
        percent = None
    return Delta(name, before, after, change, percent, "up" if change > 0 else "down")


@dataclass(frozen=True)
class SchemaDiff:
    added: list[tuple[str, str]] = field(default_factory=list)  # (column, type)
    removed: list[tuple[str, str]] = field(default_factory=list)
    retyped: list[tuple[str, str, str]] = field(default_factory=list)  # (column, before, after)

    @property
    def unchanged(self) -> bool:
        return not (self.added or self.removed or self.retyped)

    def to_dict(self) -> dict[str, Any]:
        return {
            "added": [{"name": n, "type": t} for n, t in self.added],
            "removed": [{"name": n, "type": t} for n, t in self.removed],
            "retyped": [{"name": n, "before": b, "after": a} for n, b, a in self.retyped],
        }


def schema_diff(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> SchemaDiff:
    """Columns added, removed or retyped between two manifests' `schema` lists."""
    old = {str(c["name"]): str(c.get("type", "")) for c in before if "name" in c}
    new = {str(c["name"]): str(c.get("type", "")) for c in after if "name" in c}
    return SchemaDiff(
        added=[(n, t) for n, t in new.items() if n not in old],
        removed=[(n, t) for n, t in old.items() if n not in new],
        retyped=[(n, old[n], t) for n, t in new.items() if n in old and old[n] != t],
    )


@dataclass(frozen=True)
class Comparison:
    run_id: str
    baseline_run_id: str | None  # None: no baseline (the pipeline's first good run)
    metrics: list[Delta] = field(default_factory=list)
    rows: Delta | None = None
    duration: Delta | None = None
    schema: SchemaDiff = field(default_factory=SchemaDiff)

    @property
    def has_baseline(self) -> bool:
        return self.baseline_run_id is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "baseline_run_id": self.baseline_run_id,
            "metrics": [d.to_dict() for d in self.metrics],
            "rows": self.rows.to_dict() if self.rows else None,
            "duration_seconds": self.duration.to_dict() if self.duration else None,
            "schema": self.schema.to_dict(),
        }


def _number(value: int | float | None) -> float | None:
    return None if value is None else float(value)


def compare(current: RunSummary, baseline: RunSummary | None) -> Comparison:
    """`current` against `baseline`; without one, "no baseline" and no deltas."""
    if baseline is None:
        return Comparison(current.run_id, None)
    names = list(baseline.metrics) + [n for n in current.metrics if n not in baseline.metrics]
    metrics = [delta(n, baseline.metrics.get(n), current.metrics.get(n)) for n in names]
    schema = (
        schema_diff(baseline.schema_, current.schema_)
        if baseline.schema_ and current.schema_
        else SchemaDiff()
    )
    return Comparison(
        run_id=current.run_id,
        baseline_run_id=baseline.run_id,
        metrics=metrics,
        rows=delta("rows", _number(baseline.rows), _number(current.rows)),
        duration=delta(
            "duration_seconds",
            _number(baseline.duration_seconds),
            _number(current.duration_seconds),
        ),
        schema=schema,
    )


def shown(value: float | None) -> str:
    if value is None:
        return "-"
    if not math.isfinite(value):
        return str(value)
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:.4g}"


def describe(d: Delta) -> str:
    """`accuracy 0.95 → 0.97 ▲ +0.02 (+2.1%)`; `f1 new 0.8`; `rows 344 → 344 =`."""
    if d.direction == "new":
        return f"{d.name} {shown(d.after)} (new)"
    if d.direction == "gone":
        return f"{d.name} {shown(d.before)} → gone"
    text = f"{d.name} {shown(d.before)} → {shown(d.after)} {d.arrow}"
    if d.direction in ("up", "down") and d.change is not None:
        text += f" {d.change:+.4g}"
        text += f" ({d.percent:+.1f}%)" if d.percent is not None else " (n/a %)"
    return text


def describe_schema(diff: SchemaDiff) -> list[str]:
    lines = [f"column {n} added ({t})" for n, t in diff.added]
    lines += [f"column {n} removed (was {t})" for n, t in diff.removed]
    lines += [f"column {n} retyped {b} → {a}" for n, b, a in diff.retyped]
    return lines


def describe_comparison(comparison: Comparison) -> list[str]:
    """The comparison as lines of text (the card's section, the terminal's output)."""
    if not comparison.has_baseline:
        return ["no baseline (no earlier good run of this pipeline)"]
    lines = [describe(d) for d in comparison.metrics]
    if comparison.rows is not None and comparison.rows.direction != "n/a":
        lines.append(describe(comparison.rows))
    if comparison.duration is not None and comparison.duration.direction != "n/a":
        d = comparison.duration
        lines.append(describe(Delta("duration (s)", *_rounded(d))))
    lines += describe_schema(comparison.schema) or ["schema unchanged"]
    return lines


def _rounded(d: Delta) -> tuple[float | None, float | None, float | None, float | None, Direction]:
    def r(v: float | None) -> float | None:
        return None if v is None or not math.isfinite(v) else round(v, 1)

    return r(d.before), r(d.after), r(d.change), d.percent, d.direction
