# Customer-managed encryption (var.cmek): one Cloud KMS key ring and key per location, because a
# key must sit where its data does. The buckets and the topics use the key in var.region (the
# functions, buckets and scheduler jobs are there, so Pub/Sub's messages are stored there too);
# the BigQuery staging dataset uses the key in the BigQuery location (a multi-region "EU" / "US"
# takes a key in KMS's "europe" / "us"). When both are one location they share one key.
# Each Google service agent that encrypts on mlrelay's behalf may use the key of its data's
# location only: Cloud Storage and Pub/Sub the region's key, BigQuery the BigQuery location's.
locals {
  kms_region_location   = lower(var.region)
  kms_bigquery_location = lookup({ eu = "europe", us = "us" }, lower(var.bigquery_location), lower(var.bigquery_location))
  kms_locations         = var.cmek ? toset([local.kms_region_location, local.kms_bigquery_location]) : toset([])

  kms_key_region   = var.cmek ? google_kms_crypto_key.data[local.kms_region_location].id : null
  kms_key_bigquery = var.cmek ? google_kms_crypto_key.data[local.kms_bigquery_location].id : null

  # service agent -> the location of the key it encrypts with (granted when var.cmek)
  kms_agents = {
    storage  = { member = "serviceAccount:${data.google_storage_project_service_account.this.email_address}", location = local.kms_region_location }
    pubsub   = { member = local.pubsub_agent, location = local.kms_region_location }
    bigquery = { member = "serviceAccount:${data.google_bigquery_default_service_account.this.email}", location = local.kms_bigquery_location }
  }
}

data "google_storage_project_service_account" "this" {
  project = var.project_id
}

data "google_bigquery_default_service_account" "this" {
  project = var.project_id
}

resource "google_kms_key_ring" "data" {
  for_each = local.kms_locations
  project  = var.project_id
  name     = "${var.name_prefix}-${each.key}"
  location = each.key
}

resource "google_kms_crypto_key" "data" {
  for_each        = local.kms_locations
  name            = "${var.name_prefix}-data"
  key_ring        = google_kms_key_ring.data[each.key].id
  purpose         = "ENCRYPT_DECRYPT"
  rotation_period = "7776000s" # 90 days; old versions stay to decrypt what they wrote

  lifecycle {
    prevent_destroy = true # destroying a key makes everything it encrypted unreadable
  }
}

resource "google_kms_crypto_key_iam_member" "agents" {
  for_each      = { for agent, grant in local.kms_agents : agent => grant if var.cmek }
  crypto_key_id = google_kms_crypto_key.data[each.value.location].id
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = each.value.member
}
