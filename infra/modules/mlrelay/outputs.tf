output "topics" {
  description = "Topic ids by role (publish run requests to `runs`)."
  value       = { for role, topic in google_pubsub_topic.this : role => topic.id }
}

output "snapshot_bucket" {
  description = "Bucket of snapshots, latest pointers and the run ledger (MLRELAY_BUCKET)."
  value       = google_storage_bucket.snapshots.name
}

output "function_uris" {
  description = "HTTPS endpoint of each function (internal ingress only)."
  value       = { for name, fn in google_cloudfunctions2_function.this : name => fn.service_config[0].uri }
}

output "service_accounts" {
  description = "Service account of each service, the push identity and the pipelines identity."
  value = merge(
    { for service, account in google_service_account.function : service => account.email },
    { pusher = google_service_account.pusher.email, pipelines = google_service_account.pipelines.email },
  )
}

output "scheduler_jobs" {
  description = "Cloud Scheduler jobs created from the registry."
  value       = [for job in google_cloud_scheduler_job.schedule : job.name]
}

output "pipeline_job_events_topic" {
  description = "Topic that receives Vertex AI pipeline job state changes from the log sink."
  value       = google_pubsub_topic.this["pipeline_job_events"].id
}

output "interactions_url" {
  description = "The Slack app's Interactivity and slash-command Request URL (null: no signing secret given)."
  value       = one(google_cloudfunctions2_function.interactions[*].service_config[0].uri)
}
