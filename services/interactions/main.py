"""Cloud Function `mlrelay-interactions` (HTTP, 2nd gen): Slack's buttons and `/mlrelay`."""

import functions_framework

from mlrelay_interactions import entry

on_slack_request = functions_framework.http(entry.on_slack_request)
