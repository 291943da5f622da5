output "topics" {
  description = "Topic ids by role."
  value       = module.mlrelay.topics
}

output "snapshot_bucket" {
  description = "Snapshot bucket (MLRELAY_BUCKET for the CLI)."
  value       = module.mlrelay.snapshot_bucket
}

output "service_accounts" {
  description = "Service accounts created for mlrelay."
  value       = module.mlrelay.service_accounts
}

output "interactions_url" {
  description = "Request URL for the Slack app's interactivity and /mlrelay (docs/slack-actions.md)."
  value       = module.mlrelay.interactions_url
}
