"""How late a run finished after missing its deadline: the watchdog's claim on the run's
`pipeline.deadline_missed` (`watchdog/deadlines/<run_id>.json`) keeps the deadline, and a final
view of the same run says "succeeded, 40 min late" on the card it already updated."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from mlrelay.ports.protocols import ObjectStore
from mlrelay.stage import keys
from mlrelay.stage.records import StageRecord
from mlrelay_notifier.run_view import FINAL, RunView
from mlrelay_notifier.verdict import REGRESSION


def missed_deadline(store: ObjectStore, run_id: str) -> datetime | None:
    """The deadline the run missed, if the watchdog said so."""
    raw = store.read(keys.deadline_missed(run_id))
    if raw is None:
        return None
    record = StageRecord.from_json(raw)
    deadline = (record.result or {}).get("deadline") if record.state == "done" else None
    return datetime.fromisoformat(deadline) if isinstance(deadline, str) else None


def with_lateness(store: ObjectStore, view: RunView) -> RunView:
    """A final view of a run that missed its deadline, with how late it finished."""
    if view.status not in FINAL | {REGRESSION}:
        return view
    deadline = missed_deadline(store, view.run_id)
    if deadline is None:
        return view
    return replace(view, late_by_seconds=max(0.0, (view.occurred_at - deadline).total_seconds()))
