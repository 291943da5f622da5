"""A run given a new attempt (`trigger.retried`): its card says so, and the attempts post in its
thread (bot mode); webhooks and the console get a line naming the attempt.

The attempts of a run are the trigger's record (`commands/<original>/attempts.json`): the card
lists every one made from this run (mlrelay_notifier.used_actions), so a second attempt does not
hide the first.
"""

from __future__ import annotations

from dataclasses import replace

from mlrelay.contracts import LifecycleEvent, Stage
from mlrelay.ports.protocols import ObjectStore
from mlrelay.stage.ledger import StageRecord
from mlrelay_notifier.run_message import RunMessage, read_message
from mlrelay_notifier.run_view import RANK, RunView, build_run_view
from mlrelay_notifier.used_actions import original_of


def thread_of_original(
    store: ObjectStore, run_id: str, records: dict[str, StageRecord]
) -> RunMessage | None:
    """For a later attempt: the original's posted message, whose thread the attempt posts in."""
    original = original_of(run_id, records)
    if original == run_id:
        return None
    found = read_message(store, original)
    return found[0] if found is not None and found[0].state == "posted" else None


def retried_card_view(
    event: LifecycleEvent,
    records: dict[str, StageRecord],
    message: RunMessage,
    *,
    project: str | None,
) -> RunView:
    """The run's card as it last stood (its recorded status); the notifier adds the attempts
    made from it (mlrelay_notifier.used_actions)."""
    status = message.status if message.status in RANK else "failed"
    stage: Stage = "pipeline" if "pipeline" in records else "snapshot"
    if stage not in records:
        stage = "trigger"
    base = LifecycleEvent(
        run_id=event.run_id,
        pipeline=event.pipeline,
        stage=stage,
        status="succeeded" if status == "succeeded_with_regression" else status,  # type: ignore[arg-type]
        occurred_at=event.occurred_at,
        summary=f"{stage} {status}",
    )
    view = build_run_view(base, records, project=project, advance=True)
    record = records.get(stage)
    error = record.error if record is not None and status == "failed" else None
    return replace(view, status=status, error=view.error or error)
