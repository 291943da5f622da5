# mlrelay, prod environment. Apply through Cloud Build (cloudbuild/release-plan.yaml, then
# cloudbuild/release-apply.yaml after approval) or by hand:
# from the repo root `mlrelay package --all --out dist/functions`, then here
# `terraform init && terraform apply`.
terraform {
  required_version = ">= 1.6"
  backend "gcs" {
    prefix = "mlrelay/prod"
    # bucket is passed at init: terraform init -backend-config="bucket=<state bucket>"
  }
}

provider "google" {
  project = var.project_id
  region  = var.region
}

module "mlrelay" {
  source = "../../modules/mlrelay"

  project_id                = var.project_id
  region                    = var.region
  package_dir               = var.package_dir
  schedules_file            = var.schedules_file
  source_datasets           = var.source_datasets
  template_buckets          = var.template_buckets
  template_repositories     = var.template_repositories
  slack_webhook_secret_id   = var.slack_webhook_secret_id
  slack_bot_token_secret_id = var.slack_bot_token_secret_id
  slack_signing_secret_id   = var.slack_signing_secret_id
  slack_default_channel     = var.slack_default_channel
  bigquery_location         = var.bigquery_location
  cmek                      = var.cmek
  max_delivery_attempts     = 10
  snapshot_retention_days   = 90
  functions = {
    "mlrelay-snapshotter" = { memory = "2Gi", max_instances = 20 }
  }
}
