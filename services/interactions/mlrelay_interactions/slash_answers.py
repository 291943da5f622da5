"""`/mlrelay status PIPELINE` and `/mlrelay runs PIPELINE`: read-only answers from the run
history (mlrelay.history), newest first."""

from __future__ import annotations

from mlrelay.history import RunSummary, list_summaries
from mlrelay.ports.protocols import ObjectStore

RUNS_SHOWN = 5


def _line(summary: RunSummary) -> str:
    when = summary.finished_at or summary.logical_time or summary.accepted_at
    parts = [f"`{summary.run_id}`", summary.status]
    if when is not None:
        parts.append(when.strftime("%Y-%m-%d %H:%M UTC"))
    if summary.rows is not None:
        parts.append(f"{summary.rows} rows")
    parts += [f"{name} {value:.4g}" for name, value in sorted(summary.metrics.items())[:3]]
    if summary.error:
        parts.append(f"error: {summary.error[:120]}")
    return " · ".join(parts)


def status_text(store: ObjectStore, pipeline: str) -> str:
    found = list_summaries(store, pipeline)
    if not found:
        return f"*{pipeline}*: no finished run yet."
    return f"*{pipeline}*, latest run: " + _line(found[-1])


def runs_text(store: ObjectStore, pipeline: str) -> str:
    found = list_summaries(store, pipeline)[-RUNS_SHOWN:][::-1]
    if not found:
        return f"*{pipeline}*: no finished run yet."
    return f"*{pipeline}*, last {len(found)} runs:\n" + "\n".join(_line(s) for s in found)
