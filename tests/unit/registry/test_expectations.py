"""A pipeline's `expectations:` (mlrelay.registry.expectations): one check per item, a severity,
a derived name; a wrong item names its field and the fix, with the file's line."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlrelay.registry import RegistryError, load_registry, parse_registry
from mlrelay.registry.expectations import parse_window
from tests.helpers import REGISTRY

HEAD = """version: 1
pipelines:
  p:
    source: {table: d.t}
    template: penguins/penguins_pipeline.yaml
    expectations:
"""


def problems(items: str) -> str:
    with pytest.raises(RegistryError) as caught:
        parse_registry(HEAD + items, "reg.yaml", REGISTRY.parent)
    return str(caught.value)


def test_each_item_is_one_check_with_a_severity_and_a_derived_name() -> None:
    registry = parse_registry(
        HEAD
        + """      - min_rows: 10
      - not_null: [a, b]
        severity: warn
      - fresh_within: {column: ts, window: 36h}
        name: fresh enough
      - max_null_fraction: {column: c, fraction: 0.25}
""",
        "reg.yaml",
        REGISTRY.parent,
    )
    first, second, third, fourth = registry.pipeline("p").expectations
    assert (first.check, first.severity, first.label) == ("min_rows", "error", "min_rows(10)")
    assert (second.label, second.severity, second.columns) == ("not_null(a, b)", "warn", ["a", "b"])
    assert third.label == "fresh enough" and third.fresh_within is not None
    assert third.fresh_within.delta == timedelta(hours=36)
    assert fourth.label == "max_null_fraction(c, 0.25)"


def test_an_unknown_check_names_its_field() -> None:
    text = problems("      - not_nul: [a]\n")
    assert "reg.yaml:7: pipelines.p.expectations.0.not_nul" in text
    assert "unknown field; remove it or check its spelling" in text


def test_a_bad_window_names_the_form_it_wants() -> None:
    text = problems("      - fresh_within: {column: ts, window: 24 hours}\n")
    assert "pipelines.p.expectations.0.fresh_within.window" in text
    assert "like 90s, 30m, 24h, 7d or 2w" in text


def test_two_checks_in_one_item_are_refused() -> None:
    text = problems("      - {min_rows: 1, not_null: [x]}\n")
    assert "expectations.0: an expectation holds exactly one check (found: min_rows, not_null)" in (
        text
    )


def test_severity_fractions_and_column_names_are_checked() -> None:
    assert "expectations.0.severity" in problems("      - {severity: fatal, unique: [a]}\n")
    assert "fraction" in problems("      - max_null_fraction: {column: a, fraction: 1.5}\n")
    assert "not_null.0" in problems("      - not_null: ['a; DROP TABLE t']\n")


def test_the_demo_declares_expectations_with_one_warning() -> None:
    spec = load_registry(REGISTRY).pipeline("penguins")
    assert len(spec.expectations) >= 3
    assert [e.severity for e in spec.expectations].count("warn") == 1


@given(st.integers(min_value=1, max_value=10**6), st.sampled_from("smhdw"))
def test_a_window_is_a_count_of_units(count: int, unit: str) -> None:
    seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[unit]
    assert parse_window(f"{count}{unit}") == timedelta(seconds=count * seconds)


@pytest.mark.parametrize("text", ["", "0h", "1.5h", "24 h", "h", "24H", "-1d", "1y"])
def test_a_window_of_another_form_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="whole number and a unit"):
        parse_window(text)


def test_a_column_outside_the_expected_schema_is_found_by_validate() -> None:
    text = problems(
        "      - not_null: [id, user_id]\n    expected_schema: {id: int64, kind: string}\n"
    )
    assert (
        "pipelines.p.expectations.0: not_null(id, user_id) reads 'user_id', which is not in "
        "expected_schema (id, kind)"
    ) in text
