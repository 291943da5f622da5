"""What the BigQuery engine asks BigQuery to run: pinned to the run's time, values bound."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlrelay.errors import PermanentError
from mlrelay.ports.protocols import SnapshotPlan
from mlrelay_snapshotter.bigquery_source import source_query, staging_table_id

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def plan(**changes: object) -> SnapshotPlan:
    base: dict[str, object] = {
        "source_kind": "table",
        "table": "proj.shop.orders",
        "sql": None,
        "query_parameters": {},
        "prefix": "snapshots/o/r/",
        "job_id": "mlrelay-orders-001",
        "snapshot_time": NOW - timedelta(hours=6),
    }
    base.update(changes)
    return SnapshotPlan(**base)  # type: ignore[arg-type]


def test_a_table_is_read_for_system_time_as_of_the_logical_time() -> None:
    query = source_query(plan(), NOW)
    assert query.sql == "SELECT * FROM `proj.shop.orders` FOR SYSTEM_TIME AS OF @snapshot_time"
    [param] = query.parameters
    assert (param.name, param.type_, param.value) == (
        "snapshot_time",
        "TIMESTAMP",
        NOW - timedelta(hours=6),
    )


def test_a_slot_just_ahead_of_the_clock_reads_now_and_one_far_ahead_is_refused() -> None:
    [param] = source_query(plan(snapshot_time=NOW + timedelta(seconds=30)), NOW).parameters
    assert param.value == NOW
    with pytest.raises(PermanentError) as caught:
        source_query(plan(snapshot_time=NOW + timedelta(days=1)), NOW)
    assert caught.value.field == "logical_time"


@pytest.mark.parametrize("table", ["shop.orders`; DROP TABLE x; --", "orders", "a.b c.d"])
def test_a_table_name_that_is_not_one_is_refused(table: str) -> None:
    with pytest.raises(PermanentError) as caught:
        source_query(plan(table=table), NOW)
    assert caught.value.field == "source.table"


def test_query_values_are_typed_parameters_and_only_those_used() -> None:
    sql = "SELECT * FROM t WHERE a = @flag AND b >= @n AND c < @x AND d = @name"
    values = {"flag": True, "n": 3, "x": 1.5, "name": "o'brien", "unused": 1}
    query = source_query(plan(source_kind="query", table=None, sql=sql, query_parameters=values))
    assert query.sql == sql
    assert [(p.name, p.type_, p.value) for p in query.parameters] == [
        ("flag", "BOOL", True),
        ("n", "INT64", 3),
        ("x", "FLOAT64", 1.5),
        ("name", "STRING", "o'brien"),
    ]
    assert query.point_in_time.startswith("read_at_export")


def test_only_real_parameters_are_bound_not_comments_strings_or_system_variables() -> None:
    sql = """SELECT @@time_zone, '''it's @x''', \"\"\"say "@x" \"\"\", `@x` FROM t # @x
WHERE a = @a -- @x
  AND b = /* @x */ @b"""
    values = {"a": 1, "b": "o"}
    query = source_query(plan(source_kind="query", table=None, sql=sql, query_parameters=values))
    assert query.sql == sql
    assert [(p.name, p.value) for p in query.parameters] == [("a", 1), ("b", "o")]


def test_a_query_missing_a_value_is_refused() -> None:
    with pytest.raises(PermanentError, match="@n has no value"):
        source_query(plan(source_kind="query", table=None, sql="SELECT @n"), NOW)


@given(st.text(min_size=1, max_size=60))
def test_string_values_never_reach_the_sql(value: str) -> None:
    sql = "SELECT * FROM t WHERE name = @name"
    query = source_query(
        plan(source_kind="query", table=None, sql=sql, query_parameters={"name": value}), NOW
    )
    assert query.sql == sql and query.parameters[0].value == value


def test_staging_tables_are_named_after_the_run() -> None:
    assert staging_table_id("p", "mlrelay_staging", "orders-2026-001") == (
        "p.mlrelay_staging.orders_2026_001"
    )
