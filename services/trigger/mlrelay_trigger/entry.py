"""The trigger's CloudEvent handler (main.py registers it with functions-framework)."""

from __future__ import annotations

from cloudevents.http import CloudEvent

from mlrelay.contracts import RunRequest
from mlrelay.stage.doorway import handle_pubsub_event
from mlrelay_trigger.accept import accept_run_request


def on_run_request(event: CloudEvent) -> None:
    """Pub/Sub `runs` topic -> accept or reject one run request."""
    handle_pubsub_event(event, RunRequest, stage="trigger", work=accept_run_request)
