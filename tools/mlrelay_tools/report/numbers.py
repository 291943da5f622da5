"""How the report writes a figure: the same text in the charts' labels and in the tables."""

from __future__ import annotations

import math
from datetime import UTC, datetime

MISSING = "\N{EN DASH}"  # a figure the run does not have


def format_count(value: int | None) -> str:
    """1234567 -> '1,234,567'; missing -> MISSING."""
    return MISSING if value is None else f"{value:,}"


def format_seconds(value: float | None) -> str:
    """A duration as people read it: '42.5 s', '4 m 05 s', '2 h 03 m'; missing -> MISSING."""
    if value is None or not math.isfinite(value):
        return MISSING
    if value < 60:
        return f"{value:.1f} s"
    whole = round(value)
    if whole < 3600:
        return f"{whole // 60} m {whole % 60:02d} s"
    hours, minutes = divmod(round(value / 60), 60)
    return f"{hours} h {minutes:02d} m"


def format_metric(value: float | None) -> str:
    """A metric with the precision that tells runs apart: '0.9583', '12.5', '1,234.5'."""
    if value is None:
        return MISSING
    if not math.isfinite(value):
        return str(value)
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.1f}"
    if magnitude >= 1 or value == 0:
        return _trim(f"{value:.3f}")
    if magnitude >= 1e-4:
        return _trim(f"{value:.4f}")
    return f"{value:.3g}"


def format_time(value: datetime | None) -> str:
    """A moment in UTC, to the minute: '2026-11-30 06:00Z'."""
    return MISSING if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%MZ")


def _trim(text: str) -> str:
    return text.rstrip("0").rstrip(".") if "." in text else text
