"""BigQuery-style `@name` parameters as DuckDB's `$name` (mlrelay_snapshotter.sql_parameters):
only outside string literals, quoted names and comments."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mlrelay_snapshotter.sql_parameters import placeholders, to_dollar_placeholders


def test_placeholders_outside_literals_become_duckdb_parameters() -> None:
    sql = "SELECT '@keep', \"@col\" FROM t -- @comment\nWHERE a = @a AND b = @b_2 /* @c */"
    assert to_dollar_placeholders(sql) == (
        "SELECT '@keep', \"@col\" FROM t -- @comment\nWHERE a = $a AND b = $b_2 /* @c */"
    )
    assert placeholders(sql) == ["a", "b_2"]


@given(st.text(alphabet=st.characters(blacklist_characters="'\\"), max_size=40))
def test_string_literals_are_never_rewritten(inner: str) -> None:
    sql = f"SELECT '{inner}' AS x"
    assert to_dollar_placeholders(sql) == sql
