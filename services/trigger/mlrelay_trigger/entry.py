"""The trigger's CloudEvent handlers (main.py registers them with functions-framework)."""

from __future__ import annotations

from cloudevents.http import CloudEvent

from mlrelay.contracts import RunCommand, RunRequest
from mlrelay.stage.doorway import handle_pubsub_event
from mlrelay_trigger.accept import accept_run_request
from mlrelay_trigger.attempts import carry_out_command


def on_run_request(event: CloudEvent) -> None:
    """Pub/Sub `runs` topic -> accept or reject one run request."""
    handle_pubsub_event(event, RunRequest, stage="trigger", work=accept_run_request)


def on_run_command(event: CloudEvent) -> None:
    """Pub/Sub `commands` topic (`retry`, `rerun` and `backfill` only) -> one new attempt (or the
    missed slot's run), or a rejection."""
    handle_pubsub_event(event, RunCommand, stage="trigger", work=carry_out_command)
