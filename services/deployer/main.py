"""Cloud Functions `mlrelay-deployer` (the deploys topic), `mlrelay-cancel` (the commands topic,
cancels only) and `mlrelay-approvals` (the commands topic, approve / reject only), 2nd gen,
Pub/Sub triggers."""

import functions_framework

from mlrelay_deployer import entry

on_deploy_request = functions_framework.cloud_event(entry.on_deploy_request)
on_cancel_command = functions_framework.cloud_event(entry.on_cancel_command)
on_approval_command = functions_framework.cloud_event(entry.on_approval_command)
