# Cloud Scheduler jobs, from `mlrelay schedules export` (cloudbuild/steps/package.sh writes it):
# the very ids and RunRequest bodies `mlrelay schedules apply` would make, so Terraform and the
# CLI can never disagree about a job. Each tick publishes on the runs topic; the trigger turns the
# body's cron + zone and the publish time into the schedule slot, so a tick delivered twice is one
# run. Set manage_schedules = false when `mlrelay schedules apply` manages the jobs instead.
# Terraform is the default owner: each job carries mlrelay_managed_by = terraform, so
# `mlrelay schedules apply` reports it and leaves it alone; a job apply made (marker cli) makes
# this module's create fail with 409 "already exists" instead of taking it over silently.
resource "google_cloud_scheduler_job" "schedule" {
  for_each    = local.schedules
  project     = var.project_id
  region      = var.region
  name        = each.key
  description = each.value.description
  schedule    = each.value.schedule
  time_zone   = each.value.time_zone
  paused      = each.value.paused

  pubsub_target {
    topic_name = google_pubsub_topic.this["runs"].id
    data       = each.value.data
    attributes = merge(each.value.attributes, { mlrelay_managed_by = "terraform" })
  }

  retry_config {
    retry_count          = 3
    min_backoff_duration = "10s"
  }
}

# The watchdog's own tick: one pass over the open runs and the schedules' slots every 5 minutes
# (docs/watchdog.md). Not a registry schedule: it is always there, whoever manages the others.
resource "google_cloud_scheduler_job" "watchdog" {
  project     = var.project_id
  region      = var.region
  name        = "mlrelay-watchdog"
  description = "mlrelay: watchdog pass (stuck runs, deadlines, missed ticks); managed by Terraform"
  schedule    = var.watchdog_schedule
  time_zone   = "Etc/UTC"

  pubsub_target {
    topic_name = google_pubsub_topic.this["watchdog"].id
    data       = base64encode("{}")
    attributes = { event_type = "watchdog_tick" }
  }

  retry_config {
    retry_count          = 1
    min_backoff_duration = "10s"
  }
}
