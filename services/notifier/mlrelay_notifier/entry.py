"""The notifier's CloudEvent handlers (main.py registers them with functions-framework)."""

from __future__ import annotations

from cloudevents.http import CloudEvent

from mlrelay.contracts import LifecycleEvent
from mlrelay.ports.container import current_ports
from mlrelay.stage.doorway import handle_pubsub_event
from mlrelay.stage.envelope import from_cloudevent
from mlrelay_notifier.notify import notify_dead_letter, notify_lifecycle


def on_lifecycle_event(event: CloudEvent) -> None:
    """Pub/Sub `lifecycle` topic -> one chat message per (run, status)."""
    handle_pubsub_event(event, LifecycleEvent, stage="notify", work=notify_lifecycle)


def on_dead_letter(event: CloudEvent) -> None:
    """Pub/Sub dead-letter topic -> tell people a message could not be processed."""
    notify_dead_letter(from_cloudevent(event), current_ports())
