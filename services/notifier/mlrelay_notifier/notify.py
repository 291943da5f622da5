"""Post each lifecycle event once, however often it is delivered."""

from __future__ import annotations

import json
from datetime import timedelta

import structlog

from mlrelay.contracts import LifecycleEvent
from mlrelay.envelope import PubsubMessage
from mlrelay.errors import PermanentError
from mlrelay.handler import describe_original
from mlrelay.ledger import run_once
from mlrelay.logs import bind_run
from mlrelay.run_identity import rejection_id
from mlrelay.wiring import Ports
from mlrelay_notifier.channels import build_channel
from mlrelay_notifier.render import render_blocks, render_text

log = structlog.get_logger()

QUIET = {"snapshot.started"}


class NotificationUndeliverable(Exception):
    """The chat service refused the message for good: let the bus dead-letter it (not lost)."""


def notification_key(event: LifecycleEvent) -> str:
    suffix = event.details.get("message_id") if event.status == "dead_lettered" else None
    name = event.event_type + (f"-{suffix}" if suffix else "")
    return f"notifications/{event.run_id}/{name}.json"


def notify_event(event: LifecycleEvent, ports: Ports) -> bool:
    """Post the event unless it was posted already; True when this call posted it."""
    if event.event_type in QUIET:
        return False
    channel = ports.component("chat", build_channel)

    def post() -> dict[str, str]:
        console = bool(getattr(channel, "plain_text", False))
        text = render_text(event, console=console)
        try:
            channel.post(text, None if console else render_blocks(event))
        except PermanentError as exc:
            raise NotificationUndeliverable(str(exc)) from None
        return {"channel": channel.name, "event_type": event.event_type}

    outcome = run_once(
        ports.store, notification_key(event), "notify", post, lease=timedelta(minutes=2)
    )
    log.info("notification_done", event_type=event.event_type, duplicate=outcome.reused)
    return not outcome.reused


def notify_lifecycle(event: LifecycleEvent, message: PubsubMessage, ports: Ports) -> None:
    notify_event(event, ports)


def _identity_from_body(data: bytes) -> dict[str, str]:
    """run_id/pipeline from the message body when the publisher set no attributes."""
    try:
        body = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {}
    if not isinstance(body, dict):
        return {}
    return {k: body[k] for k in ("run_id", "pipeline") if isinstance(body.get(k), str)}


def dead_letter_event(message: PubsubMessage) -> LifecycleEvent:
    """What a dead-lettered message (with Pub/Sub's dead-letter attributes) tells people."""
    attrs = {**_identity_from_body(message.data), **message.attributes}
    subscription = attrs.get("CloudPubSubDeadLetterSourceSubscription", "unknown subscription")
    attempts = attrs.get("CloudPubSubDeadLetterSourceDeliveryCount", "?")
    return LifecycleEvent(
        run_id=attrs.get("run_id") or rejection_id(message.data, message.message_id),
        pipeline=attrs.get("pipeline"),
        stage="delivery",
        status="dead_lettered",
        summary=f"{attrs.get('event_type', 'message')} on {subscription} failed {attempts} "
        "deliveries and was dead-lettered",
        details={
            "message_id": message.message_id,
            "subscription": subscription,
            "original": describe_original(message),
        },
    )


def notify_dead_letter(message: PubsubMessage, ports: Ports) -> None:
    event = dead_letter_event(message)
    with bind_run(run_id=event.run_id, pipeline=event.pipeline):
        log.error("dead_letter_received", subscription=event.details["subscription"])
        notify_event(event, ports)
