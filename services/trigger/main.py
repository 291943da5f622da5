"""Cloud Functions `mlrelay-trigger` (Pub/Sub trigger on the runs topic) and `mlrelay-attempts`
(on the commands topic, filtered to `retry`, `rerun` and `backfill`), 2nd gen, one code package."""

import functions_framework

from mlrelay_trigger import entry

on_run_request = functions_framework.cloud_event(entry.on_run_request)
on_run_command = functions_framework.cloud_event(entry.on_run_command)
