"""A pipeline's data expectations, measured in ONE aggregate query inside the engine.

The rows never come into this process: the engine counts nulls, duplicates and values outside a
list, and finds a column's newest value; this module builds that query (every registry value a
query parameter, every column a quoted identifier checked against the snapshot's schema) and
reads its one row back into the `quality` results the manifest and the events carry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal

from mlrelay.errors import PermanentError
from mlrelay.ports.protocols import ColumnSchema, SqlDialect
from mlrelay.registry import ExpectationSpec

MeasureKind = Literal["rows", "nulls", "duplicates", "outside", "outside_example", "newest"]
FIX_DATA = "fix the data at the source, or change the expectation in the pipeline's registry entry"


def quote_identifier(dialect: SqlDialect, name: str) -> str:
    if dialect == "bigquery":
        return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"
    return '"' + name.replace('"', '""') + '"'


def parameter_marker(dialect: SqlDialect, name: str) -> str:
    return f"@{name}" if dialect == "bigquery" else f"${name}"


@dataclass(frozen=True)
class Measure:
    alias: str
    kind: MeasureKind
    columns: tuple[str, ...] = ()
    parameters: tuple[str, ...] = ()  # names of the values this measure compares with


@dataclass
class MeasuresQuery:
    """The measures of every column check, as one `SELECT <aggregates> FROM <snapshot>`."""

    measures: list[Measure] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)  # parameter name -> registry value

    def add(self, measure: Measure) -> str:
        self.measures.append(measure)
        return measure.alias

    def render(self, dialect: SqlDialect, relation: str) -> tuple[str, dict[str, Any]]:
        def q(name: str) -> str:
            return quote_identifier(dialect, name)

        selects = []
        for m in self.measures:
            column = q(m.columns[0]) if m.columns else ""
            if m.kind == "rows":
                expr = "COUNT(*)"
            elif m.kind == "nulls":
                expr = f"COUNT(*) - COUNT({column})"  # counting, not a CASE per row: cheaper
            elif m.kind == "duplicates":
                expr = duplicates(dialect, [q(c) for c in m.columns])
            elif m.kind in ("outside", "outside_example"):
                markers = ", ".join(parameter_marker(dialect, p) for p in m.parameters)
                outside = f"{column} IS NOT NULL AND {column} NOT IN ({markers})"
                if m.kind == "outside":
                    expr = f"COALESCE(SUM(CASE WHEN {outside} THEN 1 ELSE 0 END), 0)"
                else:
                    expr = f"MIN(CASE WHEN {outside} THEN {column} END)"
            else:
                expr = f"MAX({column})"
            selects.append(f"{expr} AS {q(m.alias)}")
        # identifiers quoted, values parameters
        sql = f"SELECT {', '.join(selects)} FROM {relation}"  # noqa: S608
        used = {p for m in self.measures for p in m.parameters}
        return sql, {name: value for name, value in self.values.items() if name in used}


def duplicates(dialect: SqlDialect, columns: list[str]) -> str:
    """Rows beyond the first of each combination, among the rows with no null in it (nulls are
    `not_null`'s business): COUNT - COUNT(DISTINCT), one hash aggregate, no window."""
    if len(columns) == 1:
        return f"COUNT({columns[0]}) - COUNT(DISTINCT {columns[0]})"
    complete = " AND ".join(f"{c} IS NOT NULL" for c in columns)
    if dialect == "bigquery":  # COUNT(DISTINCT) takes no STRUCT there: its JSON text instead
        combination = f"TO_JSON_STRING(STRUCT({', '.join(columns)}))"
    else:
        combination = f"ROW({', '.join(columns)})"
    return (
        f"COUNT(CASE WHEN {complete} THEN 1 END)"
        f" - COUNT(DISTINCT CASE WHEN {complete} THEN {combination} END)"
    )


def check_columns(expectations: list[ExpectationSpec], schema: list[ColumnSchema]) -> None:
    """Every column an expectation reads is in the snapshot, or a PermanentError naming it."""
    known = [c.name for c in schema]
    for i, expectation in enumerate(expectations):
        for column in expectation.columns:
            if column not in known:
                raise PermanentError(
                    f"expectations[{i}].column",
                    f"{expectation.label}: {column!r} is not a column of the snapshot",
                    f"use one of: {', '.join(known) or 'none'}",
                )


def build_query(expectations: list[ExpectationSpec]) -> MeasuresQuery | None:
    """The one aggregate query of the column checks; None when there are only row counts."""
    query = MeasuresQuery()
    for i, e in enumerate(expectations):
        if e.not_null is not None:
            for j, column in enumerate(e.not_null):
                query.add(Measure(f"e{i}_nulls_{j}", "nulls", (column,)))
        elif e.unique is not None:
            query.add(Measure(f"e{i}_duplicates", "duplicates", tuple(e.unique)))
        elif e.max_null_fraction is not None:
            query.add(Measure(f"e{i}_nulls_0", "nulls", (e.max_null_fraction.column,)))
        elif e.accepted_values is not None:
            names = tuple(f"e{i}_value_{j}" for j in range(len(e.accepted_values.values)))
            query.values.update(zip(names, e.accepted_values.values, strict=True))
            read = (e.accepted_values.column,)
            query.add(Measure(f"e{i}_outside", "outside", read, names))
            query.add(Measure(f"e{i}_outside_example", "outside_example", read, names))
        elif e.fresh_within is not None:
            query.add(Measure(f"e{i}_newest", "newest", (e.fresh_within.column,)))
    if not query.measures:
        return None
    query.measures.insert(0, Measure("rows", "rows"))
    return query


def as_utc(value: Any, field_name: str, label: str) -> datetime:
    """A column's newest value as a UTC instant (a DATE as its midnight, a DATETIME as UTC)."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    raise PermanentError(
        field_name,
        f"{label}: the column holds {type(value).__name__} values, not timestamps or dates",
        "point fresh_within at a TIMESTAMP, DATETIME or DATE column",
    )


def result(
    e: ExpectationSpec, passed: bool, observed: Any, expected: Any, message: str
) -> dict[str, Any]:
    return {
        "name": e.label,
        "check": e.check,
        "column": ", ".join(e.columns) or None,
        "severity": e.severity,
        "passed": passed,
        "observed": observed,
        "expected": expected,
        "message": f"{e.label}: {message}",
    }


def evaluate(
    expectations: list[ExpectationSpec],
    measured: dict[str, Any],
    *,
    row_count: int,
    previous_rows: int | None,
    logical_time: datetime,
) -> list[dict[str, Any]]:
    """Each expectation's result from the query's row (`measured`) and the snapshot's counts."""
    rows = int(measured.get("rows", row_count))
    results = []
    for i, e in enumerate(expectations):
        if e.min_rows is not None:
            passed = row_count >= e.min_rows
            word = "at least" if passed else "fewer than"
            text = f"{row_count} rows ({word} {e.min_rows})"
            results.append(result(e, passed, row_count, e.min_rows, text))
        elif e.max_row_change_pct is not None:
            results.append(row_change(e, row_count, previous_rows))
        elif e.not_null is not None:
            counts = {c: int(measured[f"e{i}_nulls_{j}"]) for j, c in enumerate(e.not_null)}
            total = sum(counts.values())
            found = ", ".join(f"{n} null(s) in {c}" for c, n in counts.items() if n)
            results.append(result(e, total == 0, total, 0, found or "no nulls"))
        elif e.unique is not None:
            extra = int(measured[f"e{i}_duplicates"])
            text = f"{extra} duplicate row(s) beyond the first of each ({', '.join(e.unique)})"
            results.append(result(e, extra == 0, extra, 0, text))
        elif e.max_null_fraction is not None:
            nulls = int(measured[f"e{i}_nulls_0"])
            fraction = round(nulls / rows, 6) if rows else 0.0
            limit = e.max_null_fraction.fraction
            text = f"{nulls} of {rows} rows null in {e.max_null_fraction.column} ({fraction:g})"
            results.append(result(e, fraction <= limit, fraction, limit, text))
        elif e.accepted_values is not None:
            outside = int(measured[f"e{i}_outside"])
            example = measured.get(f"e{i}_outside_example")
            if not isinstance(example, str | int | float | bool | None):
                example = str(example)  # a date, a decimal: as the message shows it
            text = f"{outside} rows outside the accepted values"
            text += f" (e.g. {example!r})" if outside else ""
            results.append(result(e, outside == 0, outside, list(e.accepted_values.values), text))
        elif e.fresh_within is not None:
            results.append(freshness(e, i, measured[f"e{i}_newest"], logical_time))
    return results


def row_change(e: ExpectationSpec, row_count: int, previous_rows: int | None) -> dict[str, Any]:
    limit = e.max_row_change_pct
    if previous_rows is None:
        return result(e, True, None, limit, "no previous snapshot to compare with")
    if previous_rows == 0:
        change = 0.0 if row_count == 0 else float("inf")
    else:
        change = round((row_count - previous_rows) / previous_rows * 100, 2)
    passed = abs(change) <= (limit or 0)
    shown = f"{change:+g}%" if change != float("inf") else "new rows after an empty one"
    text = f"{row_count} rows vs {previous_rows} in the previous snapshot ({shown})"
    return result(e, passed, None if change == float("inf") else change, limit, text)


def freshness(e: ExpectationSpec, i: int, newest: Any, logical_time: datetime) -> dict[str, Any]:
    assert e.fresh_within is not None
    oldest_allowed = logical_time.astimezone(UTC) - e.fresh_within.delta
    if newest is None:
        return result(e, False, None, oldest_allowed.isoformat(), "no values in the column")
    at = as_utc(newest, f"expectations[{i}].column", e.label)
    age = logical_time.astimezone(UTC) - at
    passed = at >= oldest_allowed
    text = f"newest {e.fresh_within.column} is {at.isoformat()}, {age} before the logical time"
    return result(e, passed, at.isoformat(), oldest_allowed.isoformat(), text)


def hard_failures(quality: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in quality if not r["passed"] and r["severity"] == "error"]


def warnings(quality: list[dict[str, Any]]) -> list[str]:
    """The failed `warn` results' messages (what the card shows)."""
    return [r["message"] for r in quality if not r["passed"] and r["severity"] == "warn"]


class ExpectationsFailed(PermanentError):
    """A hard expectation failed: the run stops before any compute; `details` has `quality`."""

    def __init__(self, quality: list[dict[str, Any]]) -> None:
        failed = hard_failures(quality)
        first = failed[0]
        index = quality.index(first)  # one result per expectation, in the registry's order
        problem = first["message"]
        if len(failed) > 1:
            problem += f"; and {len(failed) - 1} more: " + "; ".join(
                r["message"] for r in failed[1:]
            )
        super().__init__(f"expectations[{index}]", problem, FIX_DATA, details={"quality": quality})
