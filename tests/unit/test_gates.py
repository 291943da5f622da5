"""The registry's metric gates: `min` always, `max_drop` (absolute) against the baseline."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from mlrelay.gates import missed_gates
from mlrelay.registry import GateSpec

GATES = {"accuracy": GateSpec(min=0.9, max_drop=0.02)}


def test_a_run_above_the_minimum_within_the_drop_passes() -> None:
    assert missed_gates(GATES, {"accuracy": 0.95}, {"accuracy": 0.96}) == []
    assert missed_gates(GATES, {"accuracy": 0.95}, {"accuracy": 0.97}) == []  # exactly max_drop
    assert missed_gates(GATES, {"accuracy": 0.91}, None) == []  # no baseline: min only


def test_under_the_minimum_is_missed_with_the_figures() -> None:
    assert missed_gates(GATES, {"accuracy": 0.85}, None) == [
        "accuracy 0.85 is under the minimum 0.9"
    ]


def test_a_drop_beyond_max_drop_from_the_baseline_is_missed() -> None:
    assert missed_gates(GATES, {"accuracy": 0.93}, {"accuracy": 0.99}) == [
        "accuracy dropped 0.06 (0.99 → 0.93), more than max_drop 0.02"
    ]


def test_a_gated_metric_the_run_did_not_report_or_reported_as_nan_is_missed() -> None:
    assert missed_gates(GATES, {"f1": 0.9}, None) == [
        "accuracy: not reported by the run (gated in the registry)"
    ]
    assert missed_gates(GATES, {"accuracy": math.nan}, None) == [
        "accuracy: nan is not a number the gate can check"
    ]


def test_a_baseline_without_the_metric_checks_the_minimum_only() -> None:
    assert missed_gates(GATES, {"accuracy": 0.91}, {"f1": 0.99}) == []


def test_a_gate_needs_a_rule_and_a_non_negative_drop() -> None:
    with pytest.raises(ValidationError, match="give `min`, `max_drop` or both"):
        GateSpec()
    with pytest.raises(ValidationError):
        GateSpec(max_drop=-0.1)
