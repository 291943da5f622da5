"""Cloud Functions `mlrelay-deployer` (the deploys topic), `mlrelay-cancel` (the commands topic,
cancels only), `mlrelay-approvals` (the commands topic, approve / reject only),
`mlrelay-promotions` (the lifecycle topic, pipeline.succeeded only),
`mlrelay-promotion-commands` (the commands topic, promote / rollback only),
`mlrelay-job-events` (the Vertex AI log sink's topic) and `mlrelay-watchdog` (the watchdog
topic), 2nd gen, Pub/Sub triggers."""

import functions_framework

from mlrelay_deployer import entry

on_deploy_request = functions_framework.cloud_event(entry.on_deploy_request)
on_cancel_command = functions_framework.cloud_event(entry.on_cancel_command)
on_approval_command = functions_framework.cloud_event(entry.on_approval_command)
on_run_succeeded = functions_framework.cloud_event(entry.on_run_succeeded)
on_promotion_command = functions_framework.cloud_event(entry.on_promotion_command)
on_pipeline_job_event = functions_framework.cloud_event(entry.on_pipeline_job_event)
on_watchdog_tick = functions_framework.cloud_event(entry.on_watchdog_tick)
