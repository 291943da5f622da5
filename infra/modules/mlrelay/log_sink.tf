# Vertex AI pipeline job events (log `aiplatform.googleapis.com/pipeline_job_events` of resource
# type `aiplatform.googleapis.com/PipelineJob`), terminal states only, routed from Cloud Logging
# to their topic (google_pubsub_topic.this["pipeline_job_events"], pubsub.tf), which the
# `mlrelay-job-events` relay reads through its push subscription (with a dead-letter policy, like
# every function's): a job that ends without running its exit handler (cancelled, failed to
# start, killed before the handler) still gets its one final event. The entries are also kept on
# a pull subscription for a week.
moved {
  from = google_pubsub_topic.pipeline_job_events
  to   = google_pubsub_topic.this["pipeline_job_events"]
}

resource "google_logging_project_sink" "pipeline_job_events" {
  project                = var.project_id
  name                   = "${var.name_prefix}-pipeline-job-events"
  destination            = "pubsub.googleapis.com/${google_pubsub_topic.this["pipeline_job_events"].id}"
  unique_writer_identity = true
  filter                 = <<-EOT
    resource.type="aiplatform.googleapis.com/PipelineJob"
    logName="projects/${var.project_id}/logs/aiplatform.googleapis.com%2Fpipeline_job_events"
    (jsonPayload.state="PIPELINE_STATE_SUCCEEDED" OR jsonPayload.state="PIPELINE_STATE_FAILED" OR jsonPayload.state="PIPELINE_STATE_CANCELLED")
  EOT
}

resource "google_pubsub_topic_iam_member" "sink_publishes" {
  project = var.project_id
  topic   = google_pubsub_topic.this["pipeline_job_events"].name
  role    = "roles/pubsub.publisher"
  member  = google_logging_project_sink.pipeline_job_events.writer_identity
}

# Vertex AI custom jobs (`backend: vertex_custom_job`): the lines the service itself writes in a
# job's log (monitored resource `ml_job`, `resource.labels.task_name` "service": "Job completed
# successfully.", "Job failed."...; the replicas' own output has task_name `workerpool<N>-<i>`),
# to the same topic. A custom job has no exit handler, so the relay reports every end of it; it
# re-reads the job's state (GetCustomJob) and ignores the lines of a job not over. The filter does
# not match the wording of the lines, which Google does not document (docs/custom-jobs.md): a few
# lines per job, all of them the service's.
resource "google_logging_project_sink" "custom_job_events" {
  project                = var.project_id
  name                   = "${var.name_prefix}-custom-job-events"
  destination            = "pubsub.googleapis.com/${google_pubsub_topic.this["pipeline_job_events"].id}"
  unique_writer_identity = true
  filter                 = <<-EOT
    resource.type="ml_job"
    resource.labels.task_name="service"
  EOT
}

resource "google_pubsub_topic_iam_member" "custom_job_sink_publishes" {
  project = var.project_id
  topic   = google_pubsub_topic.this["pipeline_job_events"].name
  role    = "roles/pubsub.publisher"
  member  = google_logging_project_sink.custom_job_events.writer_identity
}

resource "google_pubsub_subscription" "pipeline_job_events_archive" {
  project                    = var.project_id
  name                       = "${var.topic_names.pipeline_job_events}-archive"
  topic                      = google_pubsub_topic.this["pipeline_job_events"].id
  message_retention_duration = "604800s"
  retain_acked_messages      = true
  ack_deadline_seconds       = 60
  expiration_policy {
    ttl = ""
  }
}
