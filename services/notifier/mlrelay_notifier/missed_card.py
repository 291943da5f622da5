"""Bot mode: the `schedule.missed` card of a slot, updated once the slot is backfilled.

A missed slot has no run, so its card is not a run's message (`message.json`); the notifier
keeps where it posted it under the run id the slot's tick would have made (`details.run_id`):
`notifications/<slot run id>/missed-card.json`. When that run is accepted (from the card's
Backfill button, `mlrelay backfill`, or the tick arriving late), the card is rendered again from
the kept details and the run's ledger: its Backfill button turns into "backfilled by … at …".
"""

from __future__ import annotations

import json
from typing import Any

import structlog

from mlrelay.contracts import LifecycleEvent
from mlrelay.ports.protocols import ObjectStore
from mlrelay.stage import keys
from mlrelay.stage.ledger import StageRecord
from mlrelay_notifier.chat import Posted
from mlrelay_notifier.run_view import RunView, build_run_view

log = structlog.get_logger()


def missed_card_key(slot_run_id: str) -> str:
    return keys.notification(slot_run_id, "missed-card")


def slot_run_of(event: LifecycleEvent) -> str:
    """The run the missed slot's tick would have made (the Backfill button's value)."""
    named = event.details.get("run_id")
    return named if isinstance(named, str) and named else event.run_id


def remember_missed_card(store: ObjectStore, event: LifecycleEvent, posted: Posted) -> None:
    """Where the card went, and what it showed (first post wins: a redelivery posts nothing)."""
    if not posted.ts:
        return
    kept = {
        "channel": posted.channel,
        "ts": posted.ts,
        "event": json.loads(event.to_json()),
    }
    store.create(missed_card_key(slot_run_of(event)), json.dumps(kept).encode())


def backfilled_card_view(
    store: ObjectStore, run_id: str, records: dict[str, StageRecord], *, project: str | None
) -> tuple[RunView, str, str] | None:
    """(the missed card's view as it stands now, its channel, its ts), or None without one."""
    raw = store.read(missed_card_key(run_id))
    if raw is None:
        return None
    kept: dict[str, Any] = json.loads(raw)
    event = LifecycleEvent.model_validate(kept["event"])
    view = build_run_view(event, records, project=project, advance=False)
    return view, str(kept["channel"]), str(kept["ts"])
