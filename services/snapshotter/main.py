"""Cloud Function `mlrelay-snapshotter` (2nd gen, Pub/Sub trigger on the snapshots topic)."""

import functions_framework

from mlrelay_snapshotter import entry

on_snapshot_request = functions_framework.cloud_event(entry.on_snapshot_request)
