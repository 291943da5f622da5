"""Dead letters: messages a subscription gave up on, kept in the bucket until someone replays them.

`deadletters/<subscription>/<message_id>.json` holds the original message (data and attributes),
the topic it came from, how many deliveries failed and, once replayed, when and as which new
message. The local bus writes these records itself; on Google Cloud the dead-letter function
keeps what Pub/Sub forwards (`keep_dead_letter`), reading the `CloudPubSubDeadLetterSource*`
attributes Pub/Sub adds. `mlrelay deadletters list | replay ID` (`mlrelay_tools.dead_letters`)
reads them.
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
from mlrelay.ports.protocols import ObjectStore
from mlrelay.stage import keys
from mlrelay.stage.envelope import PubsubMessage

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
    return keys.dead_letter(short_name(subscription), message_id)


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
