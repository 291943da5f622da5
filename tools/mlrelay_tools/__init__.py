"""Operator tooling: the `mlrelay` CLI, packaging, demo data, the local runtime and bus, and
schedule sync/export/backfill. Never shipped inside a Cloud Function; may import the services."""
