"""Cloud Function `mlrelay-trigger` (2nd gen, Pub/Sub trigger on the runs topic)."""

import functions_framework

from mlrelay_trigger import entry

on_run_request = functions_framework.cloud_event(entry.on_run_request)
