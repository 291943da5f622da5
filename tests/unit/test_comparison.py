"""The delta arithmetic of a run against its baseline: never a division by zero, never `nan`
on the card, and a figure only one side has is "new" or "gone"."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from mlrelay.comparison import compare, delta, describe, describe_comparison, schema_diff
from mlrelay.history import RunSummary

numbers = st.floats(allow_nan=True, allow_infinity=True)
finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12)
metric_maps = st.dictionaries(st.sampled_from(["accuracy", "f1", "loss", "n"]), numbers)


def run(run_id: str, metrics: dict[str, float], rows: int | None = 100, **kw: object) -> RunSummary:
    return RunSummary(
        run_id=run_id, pipeline="p", status="succeeded", metrics=metrics, rows=rows, **kw
    )  # type: ignore[arg-type]


@given(before=numbers | st.none(), after=numbers | st.none())
def test_a_delta_is_always_defined_and_its_text_never_says_nan(
    before: float | None, after: float | None
) -> None:
    d = delta("m", before, after)
    text = describe(d)
    if before is not None and after is not None and math.isfinite(before + after):
        assert "nan" not in text and "inf" not in text
    for value in (d.change, d.percent):
        assert value is None or math.isfinite(value)


@given(before=finite, after=finite)
def test_finite_figures_give_the_change_and_the_direction(before: float, after: float) -> None:
    d = delta("m", before, after)
    assert d.change is not None
    if d.direction == "same":
        assert math.isclose(before, after, rel_tol=1e-9, abs_tol=1e-9)
    else:
        assert d.change == after - before
        assert d.direction == ("up" if after > before else "down")
        assert d.arrow == ("▲" if after > before else "▼")
    if before == 0:
        assert d.percent is None  # no division by zero: "n/a"
    elif d.direction != "same":
        expected = (after - before) / abs(before) * 100
        if math.isfinite(expected):
            assert d.percent is not None and math.isclose(d.percent, expected, rel_tol=1e-9)
        else:  # a subnormal baseline overflows: no percentage, not inf
            assert d.percent is None


def test_a_zero_baseline_has_no_percentage_and_says_so() -> None:
    d = delta("rows", 0.0, 344.0)
    assert (d.change, d.percent, d.direction) == (344.0, None, "up")
    assert describe(d) == "rows 0 → 344 ▲ +344 (n/a %)"
    assert describe(delta("rows", 0.0, 0.0)) == "rows 0 → 0 ="


def test_nan_and_inf_compare_as_not_applicable() -> None:
    for before, after in ((math.nan, 0.9), (0.9, math.inf), (math.inf, math.inf)):
        d = delta("accuracy", before, after)
        assert (d.change, d.percent, d.direction) == (None, None, "n/a")


@given(before=metric_maps, after=metric_maps)
def test_every_metric_of_either_run_is_compared_once(
    before: dict[str, float], after: dict[str, float]
) -> None:
    comparison = compare(run("b", after), run("a", before))
    names = [d.name for d in comparison.metrics]
    assert sorted(names) == sorted(set(before) | set(after)) and len(names) == len(set(names))
    for d in comparison.metrics:
        if d.name not in before:
            assert d.direction == "new" and d.before is None
        elif d.name not in after:
            assert d.direction == "gone" and d.after is None
    describe_comparison(comparison)  # always renders


def test_new_and_missing_metrics_rows_and_duration_read_as_sentences() -> None:
    baseline = run("run-a", {"accuracy": 0.95, "loss": 0.2}, rows=400, duration_seconds=10.0)
    current = run("run-b", {"accuracy": 0.9025, "f1": 0.8}, rows=344, duration_seconds=12.5)
    lines = describe_comparison(compare(current, baseline))
    assert lines[:3] == [
        "accuracy 0.95 → 0.9025 ▼ -0.0475 (-5.0%)",
        "loss 0.2 → gone",
        "f1 0.8 (new)",
    ]
    assert "rows 400 → 344 ▼ -56 (-14.0%)" in lines
    assert "duration (s) 10 → 12.5 ▲ +2.5 (+25.0%)" in lines
    assert lines[-1] == "schema unchanged"


def test_the_first_run_has_no_baseline() -> None:
    comparison = compare(run("run-a", {"accuracy": 0.9}), None)
    assert not comparison.has_baseline and comparison.metrics == []
    assert describe_comparison(comparison) == ["no baseline (no earlier good run of this pipeline)"]


def test_the_schema_diff_names_added_removed_and_retyped_columns() -> None:
    before = [{"name": "a", "type": "int64"}, {"name": "b", "type": "string"}]
    after = [{"name": "a", "type": "double"}, {"name": "c", "type": "bool"}]
    diff = schema_diff(before, after)
    assert diff.added == [("c", "bool")]
    assert diff.removed == [("b", "string")]
    assert diff.retyped == [("a", "int64", "double")]
    lines = describe_comparison(compare(run("y", {}, schema=after), run("x", {}, schema=before)))
    assert lines[-3:] == [
        "column c added (bool)",
        "column b removed (was string)",
        "column a retyped int64 → double",
    ]
