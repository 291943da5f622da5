"""A promotion event (`promotion.canary`, `.promoted`, `.rolled_back`, `.failed`) on the run's
card: the card is the run's as its final event left it (its status stays succeeded: promotion
never changes it), with the model section added (mlrelay_notifier.model_section).

Promotion starts from `pipeline.succeeded` in parallel with the notifier, so its first event may
come before the notifier has seen the run's success: the card is built from the ledger (the
pipeline's record says succeeded) and the verdict the final event wrote, when it did.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from mlrelay.contracts import LifecycleEvent
from mlrelay.history import read_summary
from mlrelay.ports.protocols import ObjectStore
from mlrelay.stage.ledger import StageRecord
from mlrelay_notifier.lateness import with_lateness
from mlrelay_notifier.model_section import read_model
from mlrelay_notifier.run_message import RunMessage
from mlrelay_notifier.run_view import RANK, RunView, build_run_view
from mlrelay_notifier.verdict import recorded_verdict, with_verdict


def _when_finished(
    store: ObjectStore, records: dict[str, StageRecord], event: LifecycleEvent
) -> LifecycleEvent:
    """The run's success as its final card showed it: at the time the run's summary says it
    finished (else the pipeline's record ended), so the card's duration is the run's, not the
    run's plus its promotion, on every delivery of every promotion event."""
    summary = read_summary(store, event.pipeline, event.run_id) if event.pipeline else None
    record = records.get("pipeline")
    occurred = summary.finished_at if summary is not None else None
    if occurred is None and record is not None and record.finished_at:
        try:
            occurred = datetime.fromisoformat(record.finished_at)
        except ValueError:
            occurred = None
    if occurred is None or occurred.tzinfo is None:
        occurred = event.occurred_at
    return LifecycleEvent(
        run_id=event.run_id,
        pipeline=event.pipeline,
        stage="pipeline",
        status="succeeded",
        occurred_at=occurred,
        summary="pipeline succeeded",
    )


def promotion_card_view(
    store: ObjectStore,
    event: LifecycleEvent,
    records: dict[str, StageRecord],
    message: RunMessage | None,
    *,
    project: str | None,
) -> RunView:
    """The run's card with its model section; its status is the furthest of the ledger's, the
    recorded verdict's and the message's (a regression stays a regression)."""
    view = build_run_view(
        _when_finished(store, records, event), records, project=project, advance=True
    )
    if view.pipeline is not None:
        view = with_verdict(view, recorded_verdict(store, view.pipeline, view.run_id))
    if message is not None and RANK.get(message.status, 0) > RANK.get(view.status, 0):
        view = replace(view, status=message.status)
    return replace(with_lateness(store, view), model=read_model(store, event.run_id, event))
