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
