"""The SVG charts: one mark per run at the same x in every chart, bars from zero, a metric's
line stepping over the runs that lack it, figures missing shown as such."""

from __future__ import annotations

import re

from mlrelay_tools.report.charts import (
    STATUS_COLOURS,
    UNKNOWN_COLOUR,
    Point,
    bar_chart,
    line_chart,
    status_timeline,
)
from mlrelay_tools.report.numbers import format_metric

POINTS = [
    Point("r1", "succeeded", 10.0, "2026-11-25 06:00Z"),
    Point("r2", "failed", None, "2026-11-26 06:00Z"),
    Point("r3", "succeeded_with_regression", 30.0, "2026-11-27 06:00Z"),
]


def xs(svg: str, attribute: str) -> list[float]:
    return [float(x) for x in re.findall(rf'class="mark"[^>]*? {attribute}="([0-9.]+)"', svg)]


def test_bars_start_at_zero_and_a_missing_figure_is_a_grey_tick() -> None:
    svg = bar_chart(POINTS, format_metric, "durations")
    bars = re.findall(r'<rect class="mark"[^>]*y="([0-9.]+)" [^>]*height="([0-9.]+)"', svg)
    [(y1, h1), (y3, h3)] = [(float(y), float(h)) for y, h in bars]
    assert y1 + h1 == y3 + h3  # one baseline
    assert abs(h3 - 3 * h1) < 0.2  # heights in proportion to the figures
    assert f'stroke="{UNKNOWN_COLOUR}"' in svg and "r2 · 2026-11-26 06:00Z · no figure" in svg
    assert f'fill="{STATUS_COLOURS["succeeded_with_regression"]}"' in svg


def test_the_line_steps_over_a_run_without_the_metric() -> None:
    svg = line_chart(POINTS, format_metric, "accuracy")
    [line] = re.findall(r'<polyline points="([^"]+)"', svg)
    assert len(line.split()) == 2
    assert svg.count("<circle") == 2
    higher, lower = (float(p.split(",")[1]) for p in line.split())
    assert lower < higher  # 30 is drawn above 10


def test_every_chart_puts_a_run_at_the_same_x() -> None:
    full = [Point(p.run_id, p.status, 5.0, p.when) for p in POINTS]
    timeline = status_timeline(full)
    widths = [float(w) for w in re.findall(r'width="([0-9.]+)" height', timeline)]
    centres = [x + w / 2 for x, w in zip(xs(timeline, "x"), widths[-3:], strict=True)]
    assert [round(c, 1) for c in centres] == xs(line_chart(full, format_metric, "m"), "cx")


def test_a_single_run_and_a_flat_metric_still_draw_inside_the_chart() -> None:
    svg = line_chart([Point("r1", "succeeded", 0.0, "")], format_metric, "m", height=170)
    [cy] = [float(y) for y in re.findall(r'cy="([0-9.]+)"', svg)]
    assert 0 < cy < 170 and "1 run<" in svg


def test_labels_and_tooltips_are_escaped() -> None:
    svg = status_timeline([Point("<b>r</b>", "failed", None, "&")])
    assert "<b>" not in svg and "&lt;b&gt;r&lt;/b&gt; · &amp;" in svg
