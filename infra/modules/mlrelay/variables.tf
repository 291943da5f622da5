variable "project_id" {
  description = "Project that holds every mlrelay resource."
  type        = string
}

variable "region" {
  description = "Region of the functions, the bucket and the scheduler jobs (e.g. europe-west4)."
  type        = string
}

variable "name_prefix" {
  description = "Prefix of resource names that must be unique per project (service accounts, buckets get the project id appended)."
  type        = string
  default     = "mlrelay"
}

# Must equal DEFAULT_TOPICS in shared/mlrelay/config/topics.py (the infra tests check).
variable "topic_names" {
  description = "Pub/Sub topic names, by role. The functions receive them as MLRELAY_TOPIC_* env vars."
  type = object({
    runs        = string
    snapshots   = string
    deploys     = string
    lifecycle   = string
    dead_letter = string
    commands    = string
    # the Vertex AI log sink writes here; the mlrelay-job-events relay reads it
    pipeline_job_events = string
    watchdog            = string
  })
  default = {
    runs                = "mlrelay-runs"
    snapshots           = "mlrelay-snapshots"
    deploys             = "mlrelay-deploys"
    lifecycle           = "mlrelay-lifecycle"
    dead_letter         = "mlrelay-dead-letter"
    commands            = "mlrelay-commands"
    pipeline_job_events = "mlrelay-pipeline-job-events"
    watchdog            = "mlrelay-watchdog"
  }
}

variable "package_dir" {
  description = "Folder with the function packages made by `mlrelay package --all` (<service>.zip each)."
  type        = string
}

variable "schedules_file" {
  description = "JSON from `mlrelay schedules export`: the registry's schedules as Cloud Scheduler jobs (used when manage_schedules is true)."
  type        = string
}

variable "source_datasets" {
  description = "BigQuery datasets (project.dataset or dataset) the snapshotter may read; it gets data viewer on these only."
  type        = list(string)
  default     = []
}

variable "template_buckets" {
  description = "Buckets holding compiled pipeline templates the registry names as gs://BUCKET/... (e.g. Cloud Build's _TEMPLATE_BUCKET); the deployer gets object viewer on these only."
  type        = list(string)
  default     = []
}

variable "template_repositories" {
  description = "Artifact Registry KFP repositories (LOCATION/REPOSITORY or PROJECT/LOCATION/REPOSITORY) holding templates the registry names as https://LOCATION-kfp.pkg.dev/...; the deployer gets reader on these only."
  type        = list(string)
  default     = []
}

variable "slack_webhook_secret_id" {
  description = "Secret Manager secret (id, not value) holding the Slack incoming webhook URL; null = notifications go to the logs."
  type        = string
  default     = null
}

variable "cmek" {
  description = "Customer-managed encryption: make a Cloud KMS key per location (var.region for the buckets and topics, var.bigquery_location for the staging dataset) and let the Cloud Storage, Pub/Sub and BigQuery service agents use it (kms.tf). false = Google-managed keys."
  type        = bool
  default     = false
}

variable "max_delivery_attempts" {
  description = "Deliveries of a message before it goes to the dead-letter topic (5-100)."
  type        = number
  default     = 5
  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100
    error_message = "Pub/Sub accepts 5 to 100 delivery attempts."
  }
}

variable "snapshot_retention_days" {
  description = "Noncurrent object versions are deleted after this many days; snapshots move to colder storage after 30/90 days."
  type        = number
  default     = 30
}

variable "manage_schedules" {
  description = "Create Cloud Scheduler jobs from the registry here (the default owner: `mlrelay schedules apply` leaves jobs marked terraform alone). Set false when `mlrelay schedules apply` manages them instead."
  type        = bool
  default     = true
}

variable "functions" {
  description = "Per-function overrides, by function name (mlrelay-trigger, mlrelay-snapshotter, mlrelay-deployer, mlrelay-notifier, mlrelay-dead-letters): memory (\"1Gi\"), cpu (\"0.583\", \"1\", \"2\"), timeout_seconds, max_instances, concurrency (requests one instance serves at once; above 1 needs cpu >= 1). Unset fields keep the defaults in locals.tf."
  type = map(object({
    memory          = optional(string)
    cpu             = optional(string)
    timeout_seconds = optional(number)
    max_instances   = optional(number)
    concurrency     = optional(number)
  }))
  default = {}
  validation {
    condition = alltrue([for name, f in var.functions : contains(
      ["mlrelay-trigger", "mlrelay-snapshotter", "mlrelay-deployer", "mlrelay-notifier", "mlrelay-dead-letters"], name
    )])
    error_message = "functions: keys are function names (mlrelay-trigger, mlrelay-snapshotter, mlrelay-deployer, mlrelay-notifier, mlrelay-dead-letters)."
  }
}

variable "slack_bot_token_secret_id" {
  description = "Secret Manager secret (id) holding a Slack bot token (xoxb-...): one message per run, updated in place. null = webhook mode."
  type        = string
  default     = null
}

variable "slack_default_channel" {
  description = "Channel for events without a pipeline route (rejections, dead letters) in bot-token mode."
  type        = string
  default     = ""
}

variable "snapshot_mode" {
  description = "How the snapshotter copies data: export (BigQuery extract job, server-side) or stream (Storage Read API -> Parquet)."
  type        = string
  default     = "export"
  validation {
    condition     = contains(["export", "stream"], var.snapshot_mode)
    error_message = "snapshot_mode is export or stream."
  }
}

variable "bigquery_location" {
  description = "Location of the source datasets and of the snapshotter's staging dataset (e.g. EU, US, europe-west4)."
  type        = string
  default     = "EU"
}

variable "kfp_token_secret_ids" {
  description = "Bearer tokens of KFP hosts, by the name the registry's `kfp.token` gives: name -> Secret Manager secret (id, not value). The deployer gets each as MLRELAY_KFP_TOKEN_<NAME> (read when an instance starts) and may read those secrets only."
  type        = map(string)
  default     = {}
  validation {
    condition     = alltrue([for name in keys(var.kfp_token_secret_ids) : can(regex("^[a-z0-9_]{1,60}$", name))])
    error_message = "Each name is a registry `kfp.token` name: 1-60 of [a-z0-9_]."
  }
}

variable "kfp_iap" {
  description = "A KFP host behind IAP (`kfp.client_id`): the deployer may sign for itself (Service Account Token Creator on its own account), which kfp needs to get the IAP ID token on Cloud Functions."
  type        = bool
  default     = false
}

variable "slack_signing_secret_id" {
  description = "Secret Manager secret (id, not value) holding the Slack app's signing secret. Set: the interactions function (Slack buttons and /mlrelay, public ingress) is deployed with it. null = no interactions function."
  type        = string
  default     = null
}

variable "watchdog_schedule" {
  description = "Cron (UTC) of the watchdog's Cloud Scheduler job: one pass per tick."
  type        = string
  default     = "*/5 * * * *"
}
