variable "project_id" {
  description = "Project to deploy into."
  type        = string
}

variable "region" {
  description = "Region of the functions, bucket and scheduler jobs."
  type        = string
  default     = "europe-west4"
}

variable "package_dir" {
  description = "Output folder of `mlrelay package --all`."
  type        = string
  default     = "../../../dist/functions"
}

variable "schedules_file" {
  description = "Output of `mlrelay schedules export` (cloudbuild/steps/package.sh writes it)."
  type        = string
  default     = "../../../dist/schedules.json"
}

variable "source_datasets" {
  description = "BigQuery datasets the snapshotter may read."
  type        = list(string)
  default     = []
}

variable "template_buckets" {
  description = "Buckets of compiled pipeline templates (gs://) the deployer may read."
  type        = list(string)
  default     = []
}

variable "template_repositories" {
  description = "Artifact Registry KFP repositories (LOCATION/REPOSITORY) the deployer may read templates from."
  type        = list(string)
  default     = []
}

variable "slack_webhook_secret_id" {
  description = "Secret Manager secret id of the Slack webhook URL (create it and add a version first)."
  type        = string
  default     = null
}

variable "cmek" {
  description = "Customer-managed Cloud KMS keys, one per location (region, BigQuery location), made by the module."
  type        = bool
  default     = false
}

variable "bigquery_location" {
  description = "Location of the source datasets and the snapshotter's staging dataset."
  type        = string
  default     = "EU"
}

variable "slack_bot_token_secret_id" {
  description = "Secret Manager secret id of a Slack bot token (one message per run, updated in place)."
  type        = string
  default     = null
}

variable "slack_signing_secret_id" {
  description = "Secret Manager secret id of the Slack app's signing secret: set, the interactions function (Slack buttons, /mlrelay) is deployed."
  type        = string
  default     = null
}

variable "slack_default_channel" {
  description = "Slack channel for rejections and dead letters in bot-token mode."
  type        = string
  default     = ""
}
