"""A run given a new attempt (`trigger.retried`): its card says so, and the attempts post in its
thread (bot mode); webhooks and the console get a line naming the attempt.

The attempts of a run are the trigger's record (`commands/<original>/attempts.json`): the card
lists every one made from this run, so a second attempt does not hide the first.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime
from typing import Any

from mlrelay.contracts import LifecycleEvent, Stage
from mlrelay.ports.protocols import ObjectStore
from mlrelay.stage import keys
from mlrelay.stage.ledger import StageRecord
from mlrelay_notifier.run_message import RunMessage, read_message
from mlrelay_notifier.run_view import RANK, RunView, build_run_view

DONE_AS = {"retry": "retried", "rerun": "rerun on the same snapshot"}


def original_of(run_id: str, records: dict[str, StageRecord]) -> str:
    """The logical run's first run id: the trigger record's `retry_of`, else the run itself."""
    trigger = records.get("trigger")
    original = (trigger.result or {}).get("retry_of") if trigger is not None else None
    return str(original) if original else run_id


def retried_lines(store: ObjectStore, run_id: str, records: dict[str, StageRecord]) -> list[str]:
    """One line per attempt made from this run, oldest first."""
    raw = store.read(keys.attempts(original_of(run_id, records)))
    made: list[dict[str, Any]] = json.loads(raw)["attempts"] if raw else []
    lines = []
    for attempt in made:
        if attempt.get("of") != run_id:
            continue
        when = datetime.fromisoformat(attempt["requested_at"])
        done = DONE_AS.get(attempt["action"], attempt["action"])
        lines.append(
            f"{done} by {attempt['requested_by']} at {when:%Y-%m-%d %H:%M:%S %Z} "
            f"→ attempt {attempt['run_id']}"
        )
    return lines


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
    lines: list[str],
    *,
    project: str | None,
) -> RunView:
    """The run's card as it last stood (its recorded status), with the attempts made from it."""
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
    return replace(view, status=status, error=view.error or error, retried=tuple(lines))
