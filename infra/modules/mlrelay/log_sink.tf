# Vertex AI pipeline job events (log `aiplatform.googleapis.com/pipeline_job_events` of resource
# type `aiplatform.googleapis.com/PipelineJob`), routed from Cloud Logging to their own topic, so
# a job that ends without running its exit handler (cancelled, or killed before the handler) is
# still on record. The entries are kept on a pull subscription for a week; turning them into
# lifecycle events needs a translator function that is not built yet (see README).
resource "google_pubsub_topic" "pipeline_job_events" {
  project      = var.project_id
  name         = "${var.name_prefix}-pipeline-job-events"
  kms_key_name = local.kms_key_region
  depends_on   = [google_kms_crypto_key_iam_member.agents]

  message_retention_duration = "604800s"
}

resource "google_logging_project_sink" "pipeline_job_events" {
  project                = var.project_id
  name                   = "${var.name_prefix}-pipeline-job-events"
  destination            = "pubsub.googleapis.com/${google_pubsub_topic.pipeline_job_events.id}"
  unique_writer_identity = true
  filter                 = <<-EOT
    resource.type="aiplatform.googleapis.com/PipelineJob"
    logName="projects/${var.project_id}/logs/aiplatform.googleapis.com%2Fpipeline_job_events"
  EOT
}

resource "google_pubsub_topic_iam_member" "sink_publishes" {
  project = var.project_id
  topic   = google_pubsub_topic.pipeline_job_events.name
  role    = "roles/pubsub.publisher"
  member  = google_logging_project_sink.pipeline_job_events.writer_identity
}

resource "google_pubsub_subscription" "pipeline_job_events_archive" {
  project                    = var.project_id
  name                       = "${var.name_prefix}-pipeline-job-events-archive"
  topic                      = google_pubsub_topic.pipeline_job_events.id
  message_retention_duration = "604800s"
  retain_acked_messages      = true
  ack_deadline_seconds       = 60
  expiration_policy {
    ttl = ""
  }
}
