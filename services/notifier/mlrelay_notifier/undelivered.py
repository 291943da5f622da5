"""Notifications Slack did not take, kept in the bucket until one gets through.

`notifications/undelivered/<run_id>/<event_type>.json` holds the event, the rendered message and
why the last attempt failed. It is written before the error goes back to Pub/Sub (which
redelivers, then dead-letters) and deleted when a later attempt delivers. `mlrelay notify
undelivered` lists what is left.
"""

from __future__ import annotations

import json
from typing import Any

from mlrelay.contracts import LifecycleEvent, utc_now
from mlrelay.ports.protocols import ObjectStore
from mlrelay.stage import keys


def undelivered_key(event: LifecycleEvent) -> str:
    return keys.undelivered(event.run_id, event.event_type)


def keep_undelivered(
    store: ObjectStore,
    event: LifecycleEvent,
    payload: dict[str, Any],
    *,
    route: str | None,
    reason: str,
) -> str:
    record = {
        "event": json.loads(event.to_json()),
        "message": payload,
        "route": route,
        "reason": reason,
        "failed_at": utc_now().isoformat(),
    }
    key = undelivered_key(event)
    store.write(key, json.dumps(record, indent=2).encode())
    return key


def forget_undelivered(store: ObjectStore, event: LifecycleEvent) -> None:
    key = undelivered_key(event)
    if store.read(key) is not None:
        store.delete(key)


def read_undelivered(store: ObjectStore, run_id: str, event_type: str) -> dict[str, Any] | None:
    data = store.read(keys.undelivered(run_id, event_type))
    return None if data is None else json.loads(data)


def has_undelivered(store: ObjectStore, run_id: str) -> bool:
    """Whether a notification of the run failed before (it may have been posted unanswered)."""
    return bool(store.list(keys.undelivered_prefix(run_id)))


def list_undelivered(store: ObjectStore) -> list[dict[str, Any]]:
    records = []
    for key in sorted(store.list(keys.UNDELIVERED)):
        data = store.read(key)
        if data is not None:
            records.append({"key": key, **json.loads(data)})
    return records
