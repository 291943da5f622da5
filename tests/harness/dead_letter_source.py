"""functions-framework source for the dead-letter function in the harness: keep the dead letter in
the bucket (`mlrelay.deadletters.keep_dead_letter`), then the notifier's real `on_dead_letter`.

The deployed `mlrelay-dead-letters` function does not keep dead letters yet (services/notifier is
another issue's); HARNESS_SUBSCRIPTION_TOPICS maps the harness's subscriptions to their topics."""

import json
import os

import functions_framework
from cloudevents.http import CloudEvent

from mlrelay.deadletters import keep_dead_letter, short_name
from mlrelay.envelope import from_cloudevent
from mlrelay.wiring import current_ports
from mlrelay_notifier import entry

TOPICS = json.loads(os.environ["HARNESS_SUBSCRIPTION_TOPICS"])


@functions_framework.cloud_event
def on_dead_letter(event: CloudEvent) -> None:
    message = from_cloudevent(event)
    source = message.attributes.get("CloudPubSubDeadLetterSourceSubscription", "")
    keep_dead_letter(current_ports().store, message, TOPICS.get(short_name(source)))
    entry.on_dead_letter(event)
