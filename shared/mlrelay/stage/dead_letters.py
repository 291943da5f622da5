"""Dead letters: messages a subscription gave up on, kept in the bucket until someone replays them.

`deadletters/<subscription>/<message_id>.json` holds the original message (data and attributes),
the topic it came from, how many deliveries failed and, once replayed, when and as which new
message. The local bus writes these records itself; on Google Cloud the dead-letter function
keeps what Pub/Sub forwards (`keep_dead_letter`), reading the `CloudPubSubDeadLetterSource*`
attributes Pub/Sub adds. `mlrelay deadletters list | replay ID` reads them.

Replaying publishes the original data and attributes to the original topic: every stage is
idempotent per run id, so a replay after a fix completes the run without doubling anything done
before the failure.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlrelay.config.functions import FUNCTIONS
from mlrelay.config.topics import Topics
from mlrelay.contracts import utc_now
from mlrelay.errors import PermanentError
from mlrelay.ports.protocols import ObjectStore, Publisher
from mlrelay.stage.envelope import PubsubMessage

PREFIX = "deadletters/"
_PUBSUB_ATTRIBUTE = "CloudPubSubDeadLetter"


@dataclass(frozen=True)
class DeadLetter:
    key: str
    subscription: str
    topic: str
    message_id: str
    data: bytes
    attributes: dict[str, str]
    delivery_attempts: int | None
    dead_lettered_at: str
    last_error: str
    replayed_at: str | None
    replayed_as: str | None

    @property
    def run_id(self) -> str:
        return self.attributes.get("run_id", "")


def dead_letter_key(subscription: str, message_id: str) -> str:
    return f"{PREFIX}{short_name(subscription)}/{message_id}.json"


def short_name(path: str) -> str:
    """`projects/p/subscriptions/name` -> `name` (a bare name stays as it is)."""
    return path.rsplit("/", 1)[-1]


def source_topic(
    subscription: str, topics: Topics, named: Mapping[str, str] | None = None
) -> str | None:
    """The topic a subscription reads: from `named` (MLRELAY_SUBSCRIPTION_TOPICS) if it is there,
    else the deployed function's (infra/ names each push subscription after its function)."""
    name = short_name(subscription)
    if named and name in named:
        return named[name]
    for spec in FUNCTIONS:
        if spec.name == name:
            return str(getattr(topics, spec.topic))
    return None


def keep_dead_letter(
    store: ObjectStore, message: PubsubMessage, topic: str | None, *, last_error: str = ""
) -> DeadLetter:
    """Keep a message Pub/Sub forwarded to the dead-letter topic (create-only: a redelivery of
    the dead letter itself keeps the first record)."""
    attrs = message.attributes
    subscription = attrs.get(f"{_PUBSUB_ATTRIBUTE}SourceSubscription", "unknown")
    attempts = attrs.get(f"{_PUBSUB_ATTRIBUTE}SourceDeliveryCount", "")
    original = {k: v for k, v in attrs.items() if not k.startswith(_PUBSUB_ATTRIBUTE)}
    key = dead_letter_key(subscription, message.message_id)
    record = {
        "subscription": short_name(subscription),
        "topic": topic or "",
        "delivery_attempts": int(attempts) if attempts.isdigit() else None,
        "last_error": last_error,
        "dead_lettered_at": utc_now().isoformat(),
        "message": {
            "message_id": message.message_id,
            "attributes": original,
            "data": message.data.decode(errors="replace"),
            "data_base64": base64.b64encode(message.data).decode(),
            "publish_time": message.publish_time.isoformat(),
        },
    }
    store.create(key, json.dumps(record, indent=2).encode())
    return read_dead_letter_at(store, key)


def _from_record(key: str, record: dict[str, Any]) -> DeadLetter:
    message = record.get("message", {})
    if "data_base64" in message:
        data = base64.b64decode(message["data_base64"])
    else:  # the local bus keeps the data as text
        data = str(message.get("data", "")).encode()
    return DeadLetter(
        key=key,
        subscription=str(record.get("subscription", "")),
        topic=str(record.get("topic", "")),
        message_id=str(message.get("message_id", "")),
        data=data,
        attributes={str(k): str(v) for k, v in message.get("attributes", {}).items()},
        delivery_attempts=record.get("delivery_attempts"),
        dead_lettered_at=str(record.get("dead_lettered_at", "")),
        last_error=str(record.get("last_error", "")),
        replayed_at=record.get("replayed_at"),
        replayed_as=record.get("replayed_as"),
    )


def read_dead_letter_at(store: ObjectStore, key: str) -> DeadLetter:
    data = store.read(key)
    if data is None:
        raise PermanentError("id", f"no dead letter at {key}", "see `mlrelay deadletters list`")
    return _from_record(key, json.loads(data))


def list_dead_letters(store: ObjectStore, *, include_replayed: bool = True) -> list[DeadLetter]:
    letters = [read_dead_letter_at(store, key) for key in sorted(store.list(PREFIX))]
    return [d for d in letters if include_replayed or d.replayed_at is None]


def find_dead_letter(store: ObjectStore, ident: str) -> DeadLetter:
    """By message id (as `list` shows it) or by its full key."""
    letters = list_dead_letters(store)
    found = [d for d in letters if ident in (d.message_id, d.key)]
    if not found:
        raise PermanentError(
            "id", f"{ident!r} is not a dead letter in the bucket", "see `mlrelay deadletters list`"
        )
    if len(found) > 1:
        keys = ", ".join(d.key for d in found)
        raise PermanentError("id", f"{ident!r} names several dead letters ({keys})", "pass a key")
    return found[0]


def replay_dead_letter(
    store: ObjectStore, publisher: Publisher, ident: str, *, force: bool = False
) -> DeadLetter:
    """Publish the original message to its topic again and note the replay in its record."""
    letter = find_dead_letter(store, ident)
    if letter.replayed_at and not force:
        raise PermanentError(
            "id",
            f"{letter.message_id} was replayed at {letter.replayed_at} as {letter.replayed_as}",
            "pass --force to replay it again (the stages will not redo finished work)",
        )
    if not letter.topic:
        raise PermanentError(
            "topic",
            f"the record {letter.key} does not say which topic {letter.subscription} reads",
            "publish the message yourself with `gcloud pubsub topics publish`",
        )
    new_id = publisher.publish(letter.topic, letter.data, letter.attributes)
    record = json.loads(store.read(letter.key) or b"{}")
    record.update(replayed_at=utc_now().isoformat(), replayed_as=new_id)
    store.write(letter.key, json.dumps(record, indent=2).encode())
    return read_dead_letter_at(store, letter.key)
