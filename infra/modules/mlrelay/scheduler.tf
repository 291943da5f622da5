# Cloud Scheduler jobs from the registry's schedules (when manage_schedules is true). Each tick
# publishes a RunRequest on the runs topic; the trigger turns the publish time into the schedule
# slot, so a tick delivered twice is one run.
resource "google_cloud_scheduler_job" "schedule" {
  for_each  = local.schedules
  project   = var.project_id
  region    = var.region
  name      = "mlrelay-${each.key}"
  schedule  = each.value.cron
  time_zone = each.value.time_zone

  pubsub_target {
    topic_name = google_pubsub_topic.this["runs"].id
    data = base64encode(jsonencode({
      schema_version = 1
      pipeline       = each.value.pipeline
      trigger        = "schedule"
    }))
    attributes = {
      event_type         = "run_request"
      pipeline           = each.value.pipeline
      schedule_cron      = each.value.cron
      schedule_time_zone = each.value.time_zone
    }
  }

  retry_config {
    retry_count = 3
  }
}
