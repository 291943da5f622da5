"""The CloudEvent a 2nd-gen Cloud Function receives for a Pub/Sub message, both ways.

Eventarc delivers `google.cloud.pubsub.topic.v1.messagePublished` with the message under
`data.message` (base64 `data`, `attributes`, `messageId`, `publishTime`) and the subscription under
`data.subscription`. The local bus builds exactly this, so handlers cannot tell the two apart.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cloudevents.http import CloudEvent

from mlrelay.errors import InvalidMessageError

PUBSUB_EVENT_TYPE = "google.cloud.pubsub.topic.v1.messagePublished"


@dataclass(frozen=True)
class PubsubMessage:
    data: bytes
    attributes: dict[str, str] = field(default_factory=dict)
    message_id: str = ""
    publish_time: datetime = field(default_factory=lambda: datetime.now(UTC))
    ordering_key: str = ""
    delivery_attempt: int | None = None
    subscription: str = ""


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def to_cloudevent(message: PubsubMessage, topic_path: str) -> CloudEvent:
    """Wrap a Pub/Sub message the way Eventarc does for a function triggered by `topic_path`."""
    publish_time = _rfc3339(message.publish_time)
    body: dict[str, Any] = {
        "attributes": dict(message.attributes),
        "data": base64.b64encode(message.data).decode(),
        "messageId": message.message_id,
        "message_id": message.message_id,
        "publishTime": publish_time,
        "publish_time": publish_time,
    }
    if message.ordering_key:
        body["orderingKey"] = message.ordering_key
    data: dict[str, Any] = {"message": body, "subscription": message.subscription}
    if message.delivery_attempt is not None:
        data["deliveryAttempt"] = message.delivery_attempt
    attributes = {
        "id": message.message_id,
        "source": f"//pubsub.googleapis.com/{topic_path}",
        "type": PUBSUB_EVENT_TYPE,
        "specversion": "1.0",
        "time": publish_time,
        "datacontenttype": "application/json",
    }
    return CloudEvent(attributes, data)


def _parse_time(value: Any) -> datetime:
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
    return datetime.now(UTC)


def from_cloudevent(event: CloudEvent) -> PubsubMessage:
    """Unwrap the Pub/Sub message; a malformed envelope raises `InvalidMessageError`."""
    data = event.data
    if not isinstance(data, dict) or not isinstance(data.get("message"), dict):
        raise InvalidMessageError(
            "data.message",
            "the CloudEvent carries no Pub/Sub message",
            f"deliver a {PUBSUB_EVENT_TYPE} event",
        )
    body = data["message"]
    encoded = body.get("data", "")
    try:
        payload = base64.b64decode(encoded, validate=True) if encoded else b""
    except (binascii.Error, TypeError, ValueError):
        raise InvalidMessageError(
            "data.message.data", "is not valid base64", "publish the message through Pub/Sub"
        ) from None
    attributes = body.get("attributes") or {}
    attempt = data.get("deliveryAttempt", body.get("deliveryAttempt"))
    return PubsubMessage(
        data=payload,
        attributes={str(k): str(v) for k, v in attributes.items()},
        message_id=str(body.get("messageId") or body.get("message_id") or event.get("id") or ""),
        publish_time=_parse_time(body.get("publishTime") or body.get("publish_time")),
        ordering_key=str(body.get("orderingKey") or ""),
        delivery_attempt=int(attempt)
        if isinstance(attempt, int | str) and str(attempt).isdigit()
        else None,
        subscription=str(data.get("subscription") or ""),
    )
