"""Cloud Functions `mlrelay-deployer` (the deploys topic) and `mlrelay-cancel` (the commands
topic, cancels only) and `mlrelay-watchdog` (the watchdog topic), 2nd gen, Pub/Sub triggers."""

import functions_framework

from mlrelay_deployer import entry

on_deploy_request = functions_framework.cloud_event(entry.on_deploy_request)
on_cancel_command = functions_framework.cloud_event(entry.on_cancel_command)
on_watchdog_tick = functions_framework.cloud_event(entry.on_watchdog_tick)
