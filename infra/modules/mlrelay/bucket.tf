# The snapshot bucket: immutable per-run snapshots, latest pointers and the run ledger.
resource "google_storage_bucket" "snapshots" {
  project                     = var.project_id
  name                        = "${var.name_prefix}-snapshots-${var.project_id}"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  versioning {
    enabled = true
  }

  dynamic "encryption" {
    for_each = local.kms_key_region == null ? [] : [local.kms_key_region]
    content {
      default_kms_key_name = encryption.value
    }
  }
  depends_on = [google_kms_crypto_key_iam_member.agents]

  logging {
    log_bucket = google_storage_bucket.access_logs.name
  }

  # Old versions of overwritten objects (latest.json, ledger records) go after the retention.
  lifecycle_rule {
    condition {
      days_since_noncurrent_time = var.snapshot_retention_days
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }
  # Snapshots stay findable (reproducibility) but get cheaper as they age.
  lifecycle_rule {
    condition {
      age            = 30
      matches_prefix = ["snapshots/"]
    }
    action {
      type          = "SetStorageClass"
      storage_class = "NEARLINE"
    }
  }
  lifecycle_rule {
    condition {
      age            = 90
      matches_prefix = ["snapshots/"]
    }
    action {
      type          = "SetStorageClass"
      storage_class = "COLDLINE"
    }
  }
  # Half-finished uploads of a crashed export are not kept forever.
  lifecycle_rule {
    condition {
      age = 7
    }
    action {
      type = "AbortIncompleteMultipartUpload"
    }
  }
}

# Function source packages (what `mlrelay package` makes) are uploaded here for the deploy.
resource "google_storage_bucket" "sources" {
  project                     = var.project_id
  name                        = "${var.name_prefix}-sources-${var.project_id}"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"

  versioning {
    enabled = true
  }

  dynamic "encryption" {
    for_each = local.kms_key_region == null ? [] : [local.kms_key_region]
    content {
      default_kms_key_name = encryption.value
    }
  }
  depends_on = [google_kms_crypto_key_iam_member.agents]

  logging {
    log_bucket = google_storage_bucket.access_logs.name
  }

  lifecycle_rule {
    condition {
      num_newer_versions = 10
      with_state         = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }
}

# Access logs of the two buckets above.
resource "google_storage_bucket" "access_logs" {
  #checkov:skip=CKV_GCP_62:this is the access-log bucket; it cannot log to itself
  project                     = var.project_id
  name                        = "${var.name_prefix}-access-logs-${var.project_id}"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"

  versioning {
    enabled = true
  }

  dynamic "encryption" {
    for_each = local.kms_key_region == null ? [] : [local.kms_key_region]
    content {
      default_kms_key_name = encryption.value
    }
  }
  depends_on = [google_kms_crypto_key_iam_member.agents]

  lifecycle_rule {
    condition {
      age = 365
    }
    action {
      type = "Delete"
    }
  }
}

resource "google_storage_bucket_object" "package" {
  for_each = local.services
  name     = "functions/${each.value}-${filemd5("${var.package_dir}/${each.value}.zip")}.zip"
  bucket   = google_storage_bucket.sources.name
  source   = "${var.package_dir}/${each.value}.zip"
}
