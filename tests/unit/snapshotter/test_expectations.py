"""The expectations' one aggregate query (mlrelay_snapshotter.expectations): quoted identifiers,
values only as parameters, in either dialect; and how a measured row reads as results."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from mlrelay.errors import PermanentError
from mlrelay.ports.protocols import ColumnSchema
from mlrelay.registry import ExpectationSpec
from mlrelay_snapshotter.expectations import build_query, check_columns, evaluate

T0 = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)


def specs(*items: dict[str, object]) -> list[ExpectationSpec]:
    return [ExpectationSpec.model_validate(item) for item in items]


def test_row_count_checks_need_no_query() -> None:
    assert build_query(specs({"min_rows": 5}, {"max_row_change_pct": 20})) is None


def test_bigquery_sql_quotes_columns_and_binds_every_value() -> None:
    query = build_query(
        specs(
            {"accepted_values": {"column": "kind", "values": ["O'Brien", 7]}},
            {"unique": ["a", "b"]},
            {"not_null": ["kind"]},
            {"fresh_within": {"column": "ts", "window": "1d"}},
        )
    )
    assert query is not None
    sql, params = query.render("bigquery", "`p.d.t`")
    assert params == {"e0_value_0": "O'Brien", "e0_value_1": 7}
    assert "O'Brien" not in sql and "7" not in sql.replace("e0_value", "")
    assert "`kind` NOT IN (@e0_value_0, @e0_value_1)" in sql
    assert (
        "COUNT(DISTINCT CASE WHEN `a` IS NOT NULL AND `b` IS NOT NULL THEN "
        "TO_JSON_STRING(STRUCT(`a`, `b`)) END) AS `e1_duplicates`"
    ) in sql
    assert "COUNT(*) - COUNT(`kind`) AS `e2_nulls_0`" in sql
    assert sql.endswith(" FROM `p.d.t`")
    assert sql.startswith("SELECT COUNT(*) AS `rows`,") and "MAX(`ts`) AS `e3_newest`" in sql
    duck, _ = query.render("duckdb", "snap")
    assert '"kind" NOT IN ($e0_value_0, $e0_value_1)' in duck
    assert 'THEN ROW("a", "b") END)' in duck


def test_a_missing_column_names_the_expectation() -> None:
    with pytest.raises(PermanentError) as caught:
        check_columns(specs({"min_rows": 1}, {"unique": ["id", "day"]}), [ColumnSchema("id", "x")])
    assert caught.value.field == "expectations[1].column"
    assert "'day' is not a column of the snapshot" in caught.value.problem


def test_results_read_the_measured_row() -> None:
    expectations = specs(
        {"max_null_fraction": {"column": "c", "fraction": 0.5}},
        {"fresh_within": {"column": "d", "window": "2d"}},
        {"max_row_change_pct": 10, "severity": "warn"},
    )
    quality = evaluate(
        expectations,
        {"rows": 0, "e0_nulls_0": 0, "e1_newest": date(2026, 11, 21)},
        row_count=0,
        previous_rows=0,
        logical_time=T0,
    )
    assert [q["passed"] for q in quality] == [True, False, True]  # no rows: no nulls; 0 vs 0
    assert quality[1]["observed"] == "2026-11-21T00:00:00+00:00"
    with pytest.raises(PermanentError, match="holds str values, not timestamps"):
        evaluate(expectations[1:2], {"e0_newest": "yesterday"}, row_count=1, previous_rows=None,
                 logical_time=T0)  # fmt: skip
