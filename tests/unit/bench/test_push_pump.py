"""bench/push_pump.py's push body: what a function unwraps from it is the message pulled."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from cloudevents.http import CloudEvent
from google.cloud.pubsub_v1 import types  # type: ignore[attr-defined,unused-ignore]
from google.protobuf.timestamp_pb2 import Timestamp

from bench.push_pump import push_body
from mlrelay.stage.envelope import from_cloudevent


def test_the_pumped_body_unwraps_to_the_pulled_message() -> None:
    published = Timestamp()
    published.FromDatetime(datetime(2026, 12, 1, 6, 0, 1, tzinfo=UTC))
    received = types.ReceivedMessage(
        ack_id="ack-1",
        delivery_attempt=3,
        message=types.PubsubMessage(
            data=b'{"run_id": "r1"}',
            attributes={"event_type": "snapshot_request", "run_id": "r1"},
            message_id="42",
            publish_time=published,
        ),
    )
    subscription = "projects/p/subscriptions/mlrelay-snapshotter"
    body = json.loads(push_body(received, subscription))
    event = CloudEvent(
        {"type": "google.cloud.pubsub.topic.v1.messagePublished", "source": "//pubsub"}, body
    )
    message = from_cloudevent(event)
    assert message.data == b'{"run_id": "r1"}'
    assert message.attributes == {"event_type": "snapshot_request", "run_id": "r1"}
    assert (message.message_id, message.delivery_attempt) == ("42", 3)
    assert message.publish_time == datetime(2026, 12, 1, 6, 0, 1, tzinfo=UTC)
    assert message.subscription == subscription
