"""Cloud Function `mlrelay-deployer` (2nd gen, Pub/Sub trigger on the deploys topic)."""

import functions_framework

from mlrelay_deployer import entry

on_deploy_request = functions_framework.cloud_event(entry.on_deploy_request)
