"""How the report writes figures: counts with separators, durations as people read them,
metrics with the precision that tells runs apart, times in UTC."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from mlrelay_tools.report.numbers import (
    MISSING,
    format_count,
    format_metric,
    format_seconds,
    format_time,
)
from tests.report_pages import seconds_of


def test_counts_get_thousands_separators_and_missing_ones_a_dash() -> None:
    assert format_count(1234567) == "1,234,567"
    assert format_count(0) == "0"
    assert format_count(None) == MISSING


def test_durations_read_as_seconds_minutes_or_hours() -> None:
    assert format_seconds(41.54) == "41.5 s"
    assert format_seconds(245.4) == "4 m 05 s"
    assert format_seconds(7380) == "2 h 03 m"
    assert format_seconds(None) == MISSING
    assert format_seconds(math.nan) == MISSING


def test_metrics_keep_four_places_below_one_and_trim_zeros() -> None:
    assert format_metric(0.958333) == "0.9583"
    assert format_metric(0.5) == "0.5"
    assert format_metric(12.5) == "12.5"
    assert format_metric(3.0) == "3"
    assert format_metric(0.0) == "0"
    assert format_metric(-0.25) == "-0.25"
    assert format_metric(12345.67) == "12,345.7"
    assert format_metric(0.00001234) == "1.23e-05"
    assert format_metric(math.inf) == "inf"
    assert format_metric(None) == MISSING


@given(st.floats(min_value=-999, max_value=999, allow_nan=False))
def test_a_shown_metric_is_within_its_last_shown_place(value: float) -> None:
    shown = format_metric(value)
    tolerance = 0.5e-3 if abs(value) >= 1 else max(0.5e-4, abs(value) * 0.005)
    assert abs(float(shown) - value) <= tolerance


@given(st.floats(min_value=0, max_value=10 * 86400, allow_nan=False))
def test_a_shown_duration_reads_back_within_its_rounding(value: float) -> None:
    tolerance = 0.05 if value < 60 else (0.5 if value < 3600 else 30)
    assert abs(seconds_of(format_seconds(value)) - value) <= tolerance + 1e-9


def test_times_are_shown_in_utc() -> None:
    paris = timezone(timedelta(hours=1))
    assert format_time(datetime(2026, 11, 30, 7, 0, tzinfo=paris)) == "2026-11-30 06:00Z"
    assert format_time(datetime(2026, 11, 30, 6, 0, tzinfo=UTC)) == "2026-11-30 06:00Z"
    assert format_time(None) == MISSING
