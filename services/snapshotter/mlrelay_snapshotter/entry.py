"""The snapshotter's CloudEvent handler (main.py registers it with functions-framework)."""

from __future__ import annotations

from cloudevents.http import CloudEvent

from mlrelay.contracts import SnapshotRequest
from mlrelay.stage.doorway import handle_pubsub_event
from mlrelay_snapshotter.snapshot import snapshot_for_run


def on_snapshot_request(event: CloudEvent) -> None:
    """Pub/Sub `snapshots` topic -> one point-in-time snapshot per run."""
    handle_pubsub_event(event, SnapshotRequest, stage="snapshot", work=snapshot_for_run)
