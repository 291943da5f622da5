"""Rejected messages for operators: list the kept ones, replay one to the topic it came from.

The doorway keeps every message it rejects at `rejected/<id>.json` (why, which field, which
stage, and the original data and attributes). Without a replay a rejection is a dead end; with
one, a message rejected by a bug since fixed, or corrected by hand (`--data`), goes back to the
topic its stage reads. Every stage is idempotent per run id, so a replay never doubles work.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from mlrelay.config.topics import Topics
from mlrelay.contracts import utc_now
from mlrelay.errors import PermanentError
from mlrelay.ports.protocols import ObjectStore, Publisher
from mlrelay.stage import keys
from mlrelay.stage.doorway import topic_read_by


@dataclass(frozen=True)
class Rejection:
    key: str
    id: str
    stage: str
    field: str
    reason: str
    topic: str  # the topic the rejecting stage reads ("" if neither recorded nor known)
    message_id: str
    data: bytes
    attributes: dict[str, str]
    rejected_at: str
    replayed_at: str | None
    replayed_as: str | None

    def as_json(self) -> dict[str, Any]:
        """What `mlrelay rejected list --json` prints for it."""
        return {
            "id": self.id,
            "stage": self.stage,
            "field": self.field,
            "reason": self.reason,
            "topic": self.topic,
            "message_id": self.message_id,
            "rejected_at": self.rejected_at or None,
            "replayed_at": self.replayed_at,
            "replayed_as": self.replayed_as,
            "key": self.key,
        }


def _from_record(key: str, record: dict[str, Any], topics: Topics) -> Rejection:
    message = record.get("message", {})
    stage = str(record.get("stage", ""))
    return Rejection(
        key=key,
        id=key.removeprefix(keys.REJECTED).removesuffix(".json"),
        stage=stage,
        field=str(record.get("field", "")),
        reason=str(record.get("reason", "")),
        # records kept before the topic was recorded: the topic the stage reads today
        topic=str(record.get("topic") or topic_read_by(stage, topics) or ""),
        message_id=str(message.get("message_id", "")),
        data=base64.b64decode(message.get("data_base64", "")),
        attributes={str(k): str(v) for k, v in (message.get("attributes") or {}).items()},
        rejected_at=str(record.get("rejected_at", "")),
        replayed_at=record.get("replayed_at"),
        replayed_as=record.get("replayed_as"),
    )


def list_rejections(
    store: ObjectStore, topics: Topics, *, include_replayed: bool = True
) -> list[Rejection]:
    found = []
    for key in sorted(store.list(keys.REJECTED)):
        data = store.read(key)
        if data is not None and key.endswith(".json"):
            found.append(_from_record(key, json.loads(data), topics))
    return [r for r in found if include_replayed or r.replayed_at is None]


def find_rejection(store: ObjectStore, topics: Topics, ident: str) -> Rejection:
    """By the id `list` shows, the original message id, or the full key."""
    found = [r for r in list_rejections(store, topics) if ident in (r.id, r.message_id, r.key)]
    if not found:
        raise PermanentError(
            "id",
            f"{ident!r} is not a rejected message in the bucket",
            "see `mlrelay rejected list`",
        )
    if len(found) > 1:
        named = ", ".join(r.id for r in found)
        raise PermanentError("id", f"{ident!r} names several rejections ({named})", "pass its id")
    return found[0]


def replay_rejection(
    store: ObjectStore,
    publisher: Publisher,
    topics: Topics,
    ident: str,
    *,
    data: bytes | None = None,
    force: bool = False,
) -> Rejection:
    """Publish the kept message (or `data` in its place) to its topic and note the replay."""
    rejection = find_rejection(store, topics, ident)
    if rejection.replayed_at and not force:
        raise PermanentError(
            "id",
            f"{rejection.id} was replayed at {rejection.replayed_at} as {rejection.replayed_as}",
            "pass --force to replay it again (the stages will not redo finished work)",
        )
    if not rejection.topic:
        raise PermanentError(
            "topic",
            f"{rejection.key} does not say which topic stage {rejection.stage!r} reads",
            "publish the message yourself with `gcloud pubsub topics publish`",
        )
    payload = rejection.data if data is None else data
    new_id = publisher.publish(rejection.topic, payload, rejection.attributes)
    record = json.loads(store.read(rejection.key) or b"{}")
    record.update(
        replayed_at=utc_now().isoformat(), replayed_as=new_id, replayed_edited=data is not None
    )
    store.write(rejection.key, json.dumps(record, indent=2).encode())
    return find_rejection(store, topics, rejection.id)
