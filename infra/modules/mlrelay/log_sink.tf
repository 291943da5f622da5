# Vertex AI pipeline job state changes, routed from Cloud Logging to Pub/Sub, so a job that ends
# (or is cancelled) is reported even when its exit handler never ran.
resource "google_pubsub_topic" "pipeline_job_events" {
  project      = var.project_id
  name         = "${var.name_prefix}-pipeline-job-events"
  kms_key_name = var.kms_key_name
}

resource "google_logging_project_sink" "pipeline_job_events" {
  project                = var.project_id
  name                   = "${var.name_prefix}-pipeline-job-events"
  destination            = "pubsub.googleapis.com/${google_pubsub_topic.pipeline_job_events.id}"
  unique_writer_identity = true
  filter                 = <<-EOT
    resource.type="aiplatform.googleapis.com/PipelineJob"
    jsonPayload.state=("PIPELINE_STATE_SUCCEEDED" OR "PIPELINE_STATE_FAILED" OR "PIPELINE_STATE_CANCELLED")
    labels."mlrelay-run-id":*
  EOT
}

resource "google_pubsub_topic_iam_member" "sink_publishes" {
  project = var.project_id
  topic   = google_pubsub_topic.pipeline_job_events.name
  role    = "roles/pubsub.publisher"
  member  = google_logging_project_sink.pipeline_job_events.writer_identity
}
