"""The report page: one HTML document with its CSS inline and its charts as inline SVG, built
from a pipeline's run summaries. No script and no outside URL (a Content-Security-Policy says
so to the browser too); every value from the history is escaped, since run ids, parameters and
error texts come from outside."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from html import escape
from typing import Any

from mlrelay.history import RunSummary
from mlrelay_tools.report.charts import (
    STATUS_COLOURS,
    Point,
    bar_chart,
    colour,
    line_chart,
    status_timeline,
)
from mlrelay_tools.report.numbers import (
    MISSING,
    format_count,
    format_metric,
    format_seconds,
    format_time,
)

QUALITY_COLUMNS = ("name", "check", "column", "severity", "result", "observed", "expected")
CSS = """
body { font: 14px/1.45 system-ui, sans-serif; color: #212121; margin: 24px auto; max-width: 1100px;
       padding: 0 16px; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px; }
h3 { font-size: 14px; margin: 14px 0 4px; font-family: ui-monospace, monospace; }
.meta { color: #616161; margin: 0 0 12px; }
.legend span { display: inline-block; margin-right: 14px; }
.swatch { display: inline-block; width: 12px; height: 12px; border-radius: 2px;
          vertical-align: -1px; margin-right: 4px; }
.chart { display: block; max-width: 100%; height: auto; }
.chart .tick { font: 11px system-ui, sans-serif; fill: #616161; }
table { border-collapse: collapse; margin: 6px 0; }
th, td { border-bottom: 1px solid #e0e0e0; padding: 4px 10px; text-align: left;
         vertical-align: top; }
th { background: #f5f5f5; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.when { white-space: nowrap; }
td.id { font-family: ui-monospace, monospace; font-size: 12px; }
td.note { max-width: 360px; color: #5d4037; font-size: 12px; }
.status { color: #fff; border-radius: 3px; padding: 1px 6px; font-size: 12px; white-space: nowrap; }
.pass { color: #2e7d32; font-weight: 600; } .fail { color: #c62828; font-weight: 600; }
.warn { color: #e69500; font-weight: 600; }
.empty { padding: 24px; background: #fafafa; border: 1px dashed #bdbdbd; }
"""
# the page may only use its own inline styles: no script, no fetch, no outside image or font
POLICY = "default-src 'none'; style-src 'unsafe-inline'"


def render_report(
    pipeline: str, summaries: Sequence[RunSummary], *, generated_at: datetime, source: str
) -> str:
    """The whole page for `pipeline`; `summaries` oldest first (as `list_summaries` gives them)."""
    runs = list(summaries)
    body = [
        f"<h1>{escape(pipeline)} · run history</h1>",
        f'<p class="meta">generated {escape(format_time(generated_at))} from '
        f"{escape(source)} · {_counts(runs)}</p>",
    ]
    if not runs:
        body.append(
            '<p class="empty">No finished run of this pipeline has a summary yet. The notifier '
            "writes one when a run ends (<code>history/"
            f"{escape(pipeline)}/&lt;run_id&gt;.json</code>); start one with "
            f"<code>mlrelay run {escape(pipeline)}</code>.</p>"
        )
    else:
        body += _charts(runs)
        body += _quality(runs)
        body += _runs_table(runs)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{POLICY}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(pipeline)} · mlrelay report</title><style>{CSS}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )


def metric_names(runs: Sequence[RunSummary]) -> list[str]:
    """Every metric any run reported, sorted: each gets a chart and a column."""
    return sorted({name for run in runs for name in run.metrics})


def _counts(runs: Sequence[RunSummary]) -> str:
    counted: Counter[str] = Counter(run.status for run in runs)
    parts = [f"{len(runs)} run{'s' if len(runs) != 1 else ''}"]
    parts += [f"{counted[s]} {s.replace('_', ' ')}" for s in STATUS_COLOURS if counted[s]]
    return escape(", ".join(parts))


def _legend() -> str:
    items = "".join(
        f'<span><i class="swatch" style="background:{c}"></i>{escape(s.replace("_", " "))}</span>'
        for s, c in STATUS_COLOURS.items()
    )
    return f'<p class="legend">{items}</p>'


def _points(runs: Sequence[RunSummary], value: Any) -> list[Point]:
    return [
        Point(run.run_id, run.status, value(run), format_time(run.logical_time or run.finished_at))
        for run in runs
    ]


def _charts(runs: Sequence[RunSummary]) -> list[str]:
    parts = [
        '<h2 id="timeline">Status</h2>',
        _legend(),
        status_timeline(_points(runs, lambda r: None)),
        '<h2 id="durations">Duration</h2>',
        bar_chart(_points(runs, lambda r: r.duration_seconds), format_seconds, "durations"),
        '<h2 id="rows">Snapshot rows</h2>',
        bar_chart(
            _points(runs, lambda r: None if r.rows is None else float(r.rows)),
            lambda v: format_count(round(v)),
            "row counts",
        ),
        '<h2 id="metrics">Metrics</h2>',
    ]
    names = metric_names(runs)
    if not names:
        parts.append('<p class="meta">No run reported a metric.</p>')
    for name in names:
        parts.append(f'<h3 class="metric">{escape(name)}</h3>')
        parts.append(
            line_chart(_points(runs, lambda r, n=name: r.metrics.get(n)), format_metric, name)
        )
    return parts


def _quality(runs: Sequence[RunSummary]) -> list[str]:
    """The latest run's expectation results, and a row of marks per expectation over the last
    runs that recorded any."""
    checked = [run for run in runs if run.quality]
    parts = ['<h2 id="quality">Data quality</h2>']
    if not checked:
        return [*parts, '<p class="meta">No run recorded expectation results.</p>']
    latest = checked[-1]
    parts.append(
        f'<p class="meta">latest checked run <code>{escape(latest.run_id)}</code> '
        f"({escape(format_time(latest.logical_time))})</p>"
    )
    head = "".join(f"<th>{c}</th>" for c in (*QUALITY_COLUMNS, "message"))
    rows = []
    for result in latest.quality:
        verdict = _verdict(result)
        cells = [
            _text(result.get("name")),
            _text(result.get("check")),
            _text(result.get("column")),
            _text(result.get("severity")),
            f'<span class="{verdict}">{verdict}</span>',
            _figure(result.get("observed")),
            _figure(result.get("expected")),
        ]
        rows.append(
            "<tr>"
            + "".join(f"<td>{c}</td>" for c in cells)
            + f'<td class="note">{_text(result.get("message"))}</td></tr>'
        )
    parts.append(f'<table id="quality-latest"><tr>{head}</tr>{"".join(rows)}</table>')
    recent = checked[-10:]
    if len(recent) > 1:
        names = list(dict.fromkeys(str(q.get("name")) for run in recent for q in run.quality))
        header = "".join(
            f'<th title="{escape(r.run_id)}">{i + 1}</th>' for i, r in enumerate(recent)
        )
        lines = []
        for name in names:
            marks = []
            for run in recent:
                found = [q for q in run.quality if str(q.get("name")) == name]
                verdict = _verdict(found[0]) if found else ""
                sign = {"pass": "✓", "fail": "✗", "warn": "!"}.get(verdict, MISSING)
                marks.append(f'<td class="{verdict}" title="{escape(run.run_id)}">{sign}</td>')
            lines.append(f"<tr><td>{escape(name)}</td>{''.join(marks)}</tr>")
        parts.append(
            f'<p class="meta">the last {len(recent)} checked runs, oldest first</p>'
            f'<table id="quality-recent"><tr><th>expectation</th>{header}</tr>'
            f"{''.join(lines)}</table>"
        )
    return parts


def _verdict(result: dict[str, Any]) -> str:
    if result.get("passed") is True:
        return "pass"
    return "warn" if result.get("severity") == "warn" else "fail"


def _runs_table(runs: Sequence[RunSummary]) -> list[str]:
    """Newest first; each number as the history has it (`data-value`) and as people read it."""
    names = metric_names(runs)
    head = ["run id", "logical time", "status", "duration", "rows", *names, "parameters", "notes"]
    lines = []
    for run in reversed(runs):
        cells = [
            f'<td class="id">{escape(run.run_id)}</td>',
            f'<td class="when">{escape(format_time(run.logical_time))}</td>',
            f'<td><span class="status" style="background:{colour(run.status)}">'
            f"{escape(run.status)}</span></td>",
            _number(run.duration_seconds, format_seconds(run.duration_seconds)),
            _number(run.rows, format_count(run.rows)),
            *(
                _number(run.metrics.get(n), format_metric(run.metrics.get(n)), metric=n)
                for n in names
            ),
            f'<td class="note">{_parameters(run.parameters)}</td>',
            f'<td class="note">{_notes(run)}</td>',
        ]
        lines.append(f'<tr data-run="{escape(run.run_id)}">{"".join(cells)}</tr>')
    header = "".join(f"<th>{escape(h)}</th>" for h in head)
    return [
        '<h2 id="runs">Runs</h2>',
        f'<table id="runs"><tr>{header}</tr>{"".join(lines)}</table>',
    ]


def _number(value: float | None, text: str, metric: str | None = None) -> str:
    exact = "" if value is None else f' data-value="{escape(repr(value))}"'
    named = "" if metric is None else f' data-metric="{escape(metric)}"'
    return f'<td class="num"{named}{exact}>{escape(text)}</td>'


def _parameters(parameters: dict[str, Any]) -> str:
    return escape(", ".join(f"{k}={json.dumps(v)}" for k, v in sorted(parameters.items())))


def _notes(run: RunSummary) -> str:
    notes = []
    if run.failed_task:
        notes.append(f"failed task {run.failed_task}")
    if run.error:
        notes.append(run.error)
    notes += run.regressions
    if run.baseline_run_id:
        notes.append(f"compared with {run.baseline_run_id}")
    return "<br>".join(escape(n) for n in notes)


def _figure(value: object) -> str:
    """An observed or expected value: a number as the report writes numbers, a list or mapping
    (accepted values) as JSON, text as it is."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return _text(value)
    if isinstance(value, int):
        return escape(format_count(value))
    if isinstance(value, float):
        return escape(format_metric(value))
    return escape(json.dumps(value, default=str, ensure_ascii=False))


def _text(value: object) -> str:
    return MISSING if value is None or value == "" else escape(str(value))
