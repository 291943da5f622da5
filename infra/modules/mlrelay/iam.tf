# One service account per service, each with only what its stage does.
resource "google_service_account" "function" {
  for_each     = local.services
  project      = var.project_id
  account_id   = "${var.name_prefix}-${each.value}"
  display_name = "mlrelay ${each.value} function"
}

# The identity Pub/Sub pushes as (it may only invoke the functions).
resource "google_service_account" "pusher" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-pusher"
  display_name = "mlrelay Pub/Sub push identity"
}

# The identity Vertex AI pipeline jobs run as (set as the job's service account by the deployer).
resource "google_service_account" "pipelines" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-pipelines"
  display_name = "mlrelay Vertex AI pipeline jobs"
}

locals {
  sa = { for service, account in google_service_account.function : service => "serviceAccount:${account.email}" }
  publish_grants = merge([
    for service, topics in local.publishes : {
      for topic in topics : "${service}-${topic}" => { service = service, topic = topic }
    }
  ]...)
}

# Publisher on its output topics only.
resource "google_pubsub_topic_iam_member" "publishes" {
  for_each = local.publish_grants
  project  = var.project_id
  topic    = google_pubsub_topic.this[each.value.topic].name
  role     = "roles/pubsub.publisher"
  member   = local.sa[each.value.service]
}

# Every stage keeps its ledger record and claims in the snapshot bucket: object admin there only.
resource "google_storage_bucket_iam_member" "ledger" {
  for_each = local.stage_services
  bucket   = google_storage_bucket.snapshots.name
  role     = "roles/storage.objectAdmin"
  member   = local.sa[each.value]
}

# Snapshotter: run BigQuery jobs, read the declared source datasets only.
resource "google_project_iam_member" "snapshotter_bigquery_jobs" {
  project = var.project_id
  role    = "roles/bigquery.jobUser"
  member  = local.sa["snapshotter"]
}

resource "google_bigquery_dataset_iam_member" "snapshotter_reads_sources" {
  for_each   = toset(var.source_datasets)
  project    = length(split(".", each.value)) == 2 ? split(".", each.value)[0] : var.project_id
  dataset_id = element(split(".", each.value), length(split(".", each.value)) - 1)
  role       = "roles/bigquery.dataViewer"
  member     = local.sa["snapshotter"]
}

# Snapshotter, stream mode: open Storage Read sessions and read their streams. The role holds no
# table data (reading the staging table needs its dataset's grant above), so it is granted
# whatever var.snapshot_mode says: switching modes needs no IAM change.
resource "google_project_iam_member" "snapshotter_read_sessions" {
  project = var.project_id
  role    = "roles/bigquery.readSessionUser"
  member  = local.sa["snapshotter"]
}

# Deployer: create (and, for a `cancel` command, cancel) Vertex AI pipeline jobs that run as
# the pipelines account.
resource "google_project_iam_member" "deployer_vertex" {
  project = var.project_id
  role    = "roles/aiplatform.user"
  member  = local.sa["deployer"]
}

resource "google_service_account_iam_member" "deployer_acts_as_pipelines" {
  service_account_id = google_service_account.pipelines.name
  role               = "roles/iam.serviceAccountUser"
  member             = local.sa["deployer"]
}

# Deployer: read the compiled pipeline templates the registry names (gs:// and Artifact Registry).
resource "google_storage_bucket_iam_member" "deployer_reads_templates" {
  for_each = toset(var.template_buckets)
  bucket   = each.value
  role     = "roles/storage.objectViewer"
  member   = local.sa["deployer"]
}

resource "google_artifact_registry_repository_iam_member" "deployer_reads_templates" {
  for_each   = toset(var.template_repositories)
  project    = length(split("/", each.value)) == 3 ? split("/", each.value)[0] : var.project_id
  location   = element(split("/", each.value), length(split("/", each.value)) - 2)
  repository = element(split("/", each.value), length(split("/", each.value)) - 1)
  role       = "roles/artifactregistry.reader"
  member     = local.sa["deployer"]
}

# Pipeline jobs read snapshots, write their pipeline root, and report completion (exit handler).
resource "google_storage_bucket_iam_member" "pipelines_bucket" {
  bucket = google_storage_bucket.snapshots.name
  role   = "roles/storage.objectAdmin"
  member = "serviceAccount:${google_service_account.pipelines.email}"
}

resource "google_pubsub_topic_iam_member" "pipelines_report" {
  project = var.project_id
  topic   = google_pubsub_topic.this["lifecycle"].name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${google_service_account.pipelines.email}"
}

# Snapshotter: its own staging dataset for point-in-time query results (tables expire in 7 days).
resource "google_bigquery_dataset" "staging" {
  project                     = var.project_id
  dataset_id                  = "mlrelay_staging"
  location                    = var.bigquery_location
  description                 = "mlrelay snapshotter: query results staged before export"
  default_table_expiration_ms = 7 * 24 * 3600 * 1000

  dynamic "default_encryption_configuration" {
    for_each = local.kms_key_bigquery == null ? [] : [local.kms_key_bigquery]
    content {
      kms_key_name = default_encryption_configuration.value
    }
  }
  depends_on = [google_kms_crypto_key_iam_member.agents]
}

resource "google_bigquery_dataset_iam_member" "snapshotter_writes_staging" {
  project    = var.project_id
  dataset_id = google_bigquery_dataset.staging.dataset_id
  role       = "roles/bigquery.dataEditor"
  member     = local.sa["snapshotter"]
}

# Notifier: read the Slack secrets, nothing else in Secret Manager.
resource "google_secret_manager_secret_iam_member" "notifier_reads_slack" {
  for_each  = local.service_secrets["notifier"]
  project   = var.project_id
  secret_id = each.value
  role      = "roles/secretmanager.secretAccessor"
  member    = local.sa["notifier"]
}

# Deployer: read the KFP hosts' tokens, nothing else in Secret Manager.
resource "google_secret_manager_secret_iam_member" "deployer_reads_kfp_tokens" {
  for_each  = local.service_secrets["deployer"]
  project   = var.project_id
  secret_id = each.value
  role      = "roles/secretmanager.secretAccessor"
  member    = local.sa["deployer"]
}

# Deployer behind IAP: kfp signs the ID-token request with the IAM signBlob API as the deployer
# itself (the metadata server holds no key), so the account may sign for itself, nothing more.
resource "google_service_account_iam_member" "deployer_signs_for_iap" {
  count              = var.kfp_iap ? 1 : 0
  service_account_id = google_service_account.function["deployer"].name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.sa["deployer"]
}

# The push identity may invoke each function's Cloud Run service, and nothing else.
resource "google_cloud_run_v2_service_iam_member" "pusher_invokes" {
  for_each = local.functions
  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.this[each.key].service_config[0].service
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.pusher.email}"
}

# Interactions: read the ledger and the run history, and write its own command claims
# (`commands/` only: create-only claims, overwritten and released by compare-and-swap).
resource "google_storage_bucket_iam_member" "interactions_reads_ledger" {
  bucket = google_storage_bucket.snapshots.name
  role   = "roles/storage.objectViewer"
  member = local.sa["interactions"]
}

resource "google_storage_bucket_iam_member" "interactions_claims_commands" {
  bucket = google_storage_bucket.snapshots.name
  role   = "roles/storage.objectAdmin"
  member = local.sa["interactions"]
  condition {
    title       = "command-claims-only"
    description = "the interactions function writes only its command claims"
    expression  = "resource.name.startsWith(\"projects/_/buckets/${google_storage_bucket.snapshots.name}/objects/commands/\")"
  }
}

# Interactions: read the signing secret (and the bot token, for user groups), nothing else.
resource "google_secret_manager_secret_iam_member" "interactions_reads_slack" {
  for_each  = local.service_secrets["interactions"]
  project   = var.project_id
  secret_id = each.value
  role      = "roles/secretmanager.secretAccessor"
  member    = local.sa["interactions"]
}

# Slack calls the interactions function from the internet, unauthenticated: the function checks
# Slack's request signature itself (docs/slack-actions.md). The one public function.
resource "google_cloud_run_v2_service_iam_member" "public_invokes_interactions" {
  count    = var.slack_signing_secret_id == null ? 0 : 1
  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.interactions[0].service_config[0].service
  role     = "roles/run.invoker"
  member   = "allUsers"
}
