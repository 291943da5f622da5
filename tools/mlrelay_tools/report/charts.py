"""The report's charts as inline SVG: a status timeline, bar charts (durations, rows) and line
charts (one metric's trend). Every chart puts run i at the same x, so a reader can look down the
page at one run. Text in a chart (labels, tooltips) is escaped: run ids come from outside."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

STATUS_COLOURS: dict[str, str] = {
    "succeeded": "#2e7d32",
    "succeeded_with_regression": "#e69500",
    "failed": "#c62828",
    "cancelled": "#78909c",
}
UNKNOWN_COLOUR = "#9e9e9e"
WIDTH = 760
LEFT, RIGHT, TOP, BOTTOM = 72, 16, 14, 26


@dataclass(frozen=True)
class Point:
    """One run in a chart: its id (the tooltip), status (the colour) and figure (None: none)."""

    run_id: str
    status: str
    value: float | None
    when: str = ""  # the run's logical time as text, for the tooltip and the axis


def colour(status: str) -> str:
    return STATUS_COLOURS.get(status, UNKNOWN_COLOUR)


def status_timeline(points: Sequence[Point], label: str = "status timeline") -> str:
    """One mark per run, oldest left, coloured by status; failures drawn taller."""
    height = 64
    marks = []
    for i, p in enumerate(points):
        x = _x(i, len(points))
        tall = p.status not in ("succeeded",)
        top, size = (TOP, 28) if tall else (TOP + 6, 16)
        marks.append(
            f'<rect class="mark" data-status="{escape(p.status)}" x="{x - _half(len(points)):.1f}"'
            f' y="{top}" width="{2 * _half(len(points)):.1f}" height="{size}" rx="2"'
            f' fill="{colour(p.status)}"><title>{_tip(p, p.status)}</title></rect>'
        )
    return _svg(label, height, [*marks, *_x_labels(points, height)])


def bar_chart(
    points: Sequence[Point], fmt: Callable[[float], str], label: str, height: int = 170
) -> str:
    """A bar per run from zero, coloured by status; a run without the figure gets a grey tick."""
    values = [p.value for p in points if p.value is not None and _finite(p.value)]
    top = _nice_ceiling(max(values, default=0.0))
    scale = _Scale(0.0, top, height)
    parts = _grid(scale, fmt)
    for i, p in enumerate(points):
        x, half = _x(i, len(points)), _half(len(points))
        if p.value is None or not _finite(p.value):
            base = scale.y(0)
            parts.append(
                f'<line class="missing" x1="{x - half:.1f}" x2="{x + half:.1f}" y1="{base:.1f}"'
                f' y2="{base:.1f}" stroke="{UNKNOWN_COLOUR}" stroke-width="3">'
                f"<title>{_tip(p, 'no figure')}</title></line>"
            )
            continue
        y = scale.y(p.value)
        parts.append(
            f'<rect class="mark" x="{x - half:.1f}" y="{y:.1f}" width="{2 * half:.1f}"'
            f' height="{max(scale.y(0) - y, 1.0):.1f}" fill="{colour(p.status)}">'
            f"<title>{_tip(p, fmt(p.value))}</title></rect>"
        )
    return _svg(label, height, [*parts, *_x_labels(points, height)])


def line_chart(
    points: Sequence[Point], fmt: Callable[[float], str], label: str, height: int = 170
) -> str:
    """A metric's trend: a line through the runs that have it (a run without it, e.g. a failed
    one, is stepped over), a dot per run coloured by its status."""
    values = [p.value for p in points if p.value is not None and _finite(p.value)]
    low, high = _padded_range(values)
    scale = _Scale(low, high, height)
    parts = _grid(scale, fmt)
    line = []
    dots = []
    for i, p in enumerate(points):
        if p.value is None or not _finite(p.value):
            continue
        x, y = _x(i, len(points)), scale.y(p.value)
        line.append(f"{x:.1f},{y:.1f}")
        dots.append(
            f'<circle class="mark" cx="{x:.1f}" cy="{y:.1f}" r="4.5" fill="{colour(p.status)}">'
            f"<title>{_tip(p, fmt(p.value))}</title></circle>"
        )
    if len(line) > 1:
        parts.append(
            f'<polyline points="{" ".join(line)}" fill="none" stroke="#1565c0" stroke-width="2"/>'
        )
    return _svg(label, height, [*parts, *dots, *_x_labels(points, height)])


@dataclass(frozen=True)
class _Scale:
    low: float
    high: float
    height: int

    def y(self, value: float) -> float:
        span = self.high - self.low or 1.0
        plot = self.height - TOP - BOTTOM
        return TOP + plot * (1 - (value - self.low) / span)


def _grid(scale: _Scale, fmt: Callable[[float], str]) -> list[str]:
    lines = []
    for value in (scale.low, (scale.low + scale.high) / 2, scale.high):
        y = scale.y(value)
        lines.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e0e0e0"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" class="tick">'
            f"{escape(fmt(value))}</text>"
        )
    return lines


def _x_labels(points: Sequence[Point], height: int) -> list[str]:
    """The first and last run's time under the plot, and how many runs lie between."""
    if not points:
        return []
    y = height - 8
    labels = [f'<text x="{LEFT}" y="{y}" class="tick">{escape(points[0].when)}</text>']
    if len(points) > 1:
        labels.append(
            f'<text x="{WIDTH - RIGHT}" y="{y}" text-anchor="end" class="tick">'
            f"{escape(points[-1].when)}</text>"
        )
    labels.append(
        f'<text x="{(LEFT + WIDTH - RIGHT) / 2:.0f}" y="{y}" text-anchor="middle" class="tick">'
        f"{len(points)} run{'s' if len(points) != 1 else ''}</text>"
    )
    return labels


def _svg(label: str, height: int, parts: list[str]) -> str:
    return (
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}"'
        f' role="img" aria-label="{escape(label)}">{"".join(parts)}</svg>'
    )


def _x(i: int, n: int) -> float:
    return LEFT + (i + 0.5) * (WIDTH - LEFT - RIGHT) / max(n, 1)


def _half(n: int) -> float:
    """Half a mark's width: a third of the slot, between 1 and 14 pixels."""
    return min(max((WIDTH - LEFT - RIGHT) / max(n, 1) / 3, 1.0), 14.0)


def _tip(p: Point, what: str) -> str:
    return escape(f"{p.run_id} · {p.when} · {what}")


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def _nice_ceiling(value: float) -> float:
    """The axis top: 1, 2, 2.5 or 5 times a power of ten, at or above `value`."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    return next(m * power for m in (1.0, 2.0, 2.5, 5.0, 10.0) if m * power >= value)


def _padded_range(values: Sequence[float | None]) -> tuple[float, float]:
    found = [v for v in values if v is not None]
    if not found:
        return 0.0, 1.0
    low, high = min(found), max(found)
    pad = (high - low) * 0.1 or abs(high) * 0.1 or 1.0
    return low - pad, high + pad
