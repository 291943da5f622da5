"""What a finished run comes to: its summary in the history (`history/<pipeline>/<run_id>.json`),
its comparison with the pipeline's last good run, and the metric gates it missed.

The notifier is the history's writer: the final event (`pipeline.succeeded`, `*.failed`,
`pipeline.cancelled`) writes the summary, so it exists for every backend. A redelivered final
event keeps the baseline the first delivery chose and writes the same summary again; a late
progress event only reads it.
A missed gate turns `succeeded` into `succeeded_with_regression`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Final

import structlog

from mlrelay.comparison import Comparison, compare
from mlrelay.contracts import LifecycleEvent
from mlrelay.gates import missed_gates
from mlrelay.history import FinalStatus, RunSummary, last_good, read_summary, write_summary
from mlrelay.ports.protocols import ObjectStore
from mlrelay.registry.specs import GateSpec
from mlrelay.stage.ledger import StageRecord
from mlrelay.stage.open_runs import mark_settled
from mlrelay_notifier.run_view import FINAL, RunView

log = structlog.get_logger()

REGRESSION: Final = "succeeded_with_regression"


@dataclass(frozen=True)
class Verdict:
    status: str  # succeeded, succeeded_with_regression, failed or cancelled
    comparison: Comparison | None = None  # only for a success
    regressions: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # the snapshot's quality warnings


def manifest_key(store: ObjectStore, uri: str) -> str | None:
    """The store key of a manifest URI the store itself made (None: another bucket's)."""
    root = store.uri("")
    if not uri.startswith(root):
        return None
    return uri.removeprefix(root).lstrip("/")


def read_manifest(store: ObjectStore, uri: str | None) -> dict[str, Any]:
    key = manifest_key(store, uri) if uri else None
    raw = store.read(key) if key else None
    if raw is None:
        return {}
    try:
        found = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        log.warning("manifest_unreadable", manifest_uri=uri)
        return {}
    return found if isinstance(found, dict) else {}


def quality_warnings(quality: list[dict[str, Any]], recorded: list[str]) -> list[str]:
    """The warnings the snapshot recorded, else the failed `severity: warn` results."""
    if recorded:
        return [str(w) for w in recorded]
    return [
        str(r.get("message") or f"{r.get('name', 'expectation')} failed")
        for r in quality
        if not r.get("passed", True) and r.get("severity") == "warn"
    ]


def _when(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text)) if text else None
    except ValueError:
        return None


def _metrics(figures: dict[str, Any]) -> dict[str, float]:
    return {
        k: float(v)
        for k, v in figures.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }


def summarize(
    view: RunView, records: dict[str, StageRecord], store: ObjectStore, status: FinalStatus
) -> RunSummary:
    """The run's summary as the view and the ledger show it (before comparison)."""
    trigger = (records.get("trigger") or StageRecord("trigger", "running", "")).result or {}
    snapshot = (records.get("snapshot") or StageRecord("snapshot", "running", "")).result or {}
    manifest = read_manifest(store, snapshot.get("manifest_uri"))
    found = manifest.get("quality") or snapshot.get("quality") or []
    quality = [r for r in found if isinstance(r, dict)]
    return RunSummary(
        run_id=view.run_id,
        pipeline=view.pipeline or "",
        status=status,
        schedule=trigger.get("schedule"),
        trigger=view.trigger,
        logical_time=_when(view.logical_time),
        accepted_at=view.accepted_at,
        finished_at=view.occurred_at,
        duration_seconds=view.duration_seconds,
        parameters=view.parameters,
        metrics=_metrics(view.metrics),
        rows=snapshot.get("row_count"),
        total_bytes=snapshot.get("total_bytes"),
        files=snapshot.get("file_count"),
        manifest_uri=snapshot.get("manifest_uri"),
        fingerprint=snapshot.get("fingerprint"),
        schema=list(manifest.get("schema") or []),
        quality=quality,
        quality_warnings=quality_warnings(quality, list(snapshot.get("quality_warnings") or [])),
        failed_task=view.failed_task,
        error=view.error,
    )


def _baseline(store: ObjectStore, summary: RunSummary) -> RunSummary | None:
    """The baseline an earlier delivery chose, else the last good run (same schedule)."""
    kept = read_summary(store, summary.pipeline, summary.run_id)
    if kept is not None and kept.baseline_run_id:
        return read_summary(store, summary.pipeline, kept.baseline_run_id)
    if kept is not None and kept.status != "failed":
        return None  # compared before, and there was no baseline then
    return last_good(store, summary.pipeline, before=summary, schedule=summary.schedule)


def settle(
    view: RunView,
    records: dict[str, StageRecord],
    store: ObjectStore,
    gates: dict[str, GateSpec],
) -> Verdict:
    """A final view: compare it, apply the gates, write its summary; what the card shows."""
    if view.status == "cancelled" and view.pipeline is not None:
        summary = summarize(view, records, store, "cancelled")
        write_summary(store, summary)
        mark_settled(store, summary.run_id)
        return Verdict("cancelled", warnings=summary.quality_warnings)
    if view.status == "failed" or view.pipeline is None:
        summary = summarize(view, records, store, "failed")
        if view.pipeline is not None:
            write_summary(store, summary)
            mark_settled(store, summary.run_id)
        return Verdict("failed", warnings=summary.quality_warnings)
    summary = summarize(view, records, store, "succeeded")
    baseline = _baseline(store, summary)
    missed = missed_gates(gates, summary.metrics, baseline.metrics if baseline else None)
    status: FinalStatus = REGRESSION if missed else "succeeded"
    summary = summary.model_copy(
        update={
            "status": status,
            "baseline_run_id": baseline.run_id if baseline else None,
            "regressions": missed,
        }
    )
    write_summary(store, summary)
    mark_settled(store, summary.run_id)  # the run leaves the watchdog's index of open runs
    log.info("run_settled", status=status, baseline=summary.baseline_run_id, missed=len(missed))
    return Verdict(status, compare(summary, baseline), missed, summary.quality_warnings)


def recorded_verdict(store: ObjectStore, pipeline: str, run_id: str) -> Verdict | None:
    """The verdict the run's final event wrote, for a message rendered from a later event."""
    summary = read_summary(store, pipeline, run_id)
    if summary is None:
        return None
    baseline = (
        read_summary(store, pipeline, summary.baseline_run_id) if summary.baseline_run_id else None
    )
    comparison = None if summary.status in ("failed", "cancelled") else compare(summary, baseline)
    return Verdict(summary.status, comparison, summary.regressions, summary.quality_warnings)


def judge(
    event: LifecycleEvent,
    view: RunView,
    records: dict[str, StageRecord],
    store: ObjectStore,
    gates: dict[str, GateSpec],
) -> Verdict | None:
    """The verdict for the message this event renders: settled by a final event, read back
    for a view the ledger moved to a final state; None while the run is still going."""
    if view.pipeline is None or view.status not in FINAL:
        return None
    if event.status in FINAL:
        return settle(view, records, store, gates)
    return recorded_verdict(store, view.pipeline, view.run_id)


def with_verdict(view: RunView, verdict: Verdict | None) -> RunView:
    if verdict is None:
        return view
    return replace(
        view,
        status=verdict.status,
        comparison=verdict.comparison,
        regressions=list(verdict.regressions),
        warnings=list(verdict.warnings),
    )
