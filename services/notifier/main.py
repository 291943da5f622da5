"""Cloud Functions `mlrelay-notifier` (lifecycle topic) and `mlrelay-dead-letters` (dead-letter
topic), 2nd gen, from one source."""

import functions_framework

from mlrelay_notifier import entry

on_lifecycle_event = functions_framework.cloud_event(entry.on_lifecycle_event)
on_dead_letter = functions_framework.cloud_event(entry.on_dead_letter)
