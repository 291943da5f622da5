# One function per row of FUNCTIONS (four services; a service's package serves each of its
# entry points: the deployer's deploys, cancels and the Vertex log relay).
resource "google_cloudfunctions2_function" "this" {
  for_each    = local.functions
  project     = var.project_id
  location    = var.region
  name        = each.key
  description = "mlrelay ${each.value.service}: ${each.value.entry_point} on ${var.topic_names[each.value.topic]}"

  build_config {
    runtime     = "python311"
    entry_point = each.value.entry_point
    source {
      storage_source {
        bucket = google_storage_bucket.sources.name
        object = google_storage_bucket_object.package[each.value.service].name
      }
    }
  }

  service_config {
    available_memory                 = each.value.memory
    available_cpu                    = each.value.cpu
    max_instance_request_concurrency = each.value.concurrency
    timeout_seconds                  = each.value.timeout_seconds
    max_instance_count               = each.value.max_instances
    service_account_email            = google_service_account.function[each.value.service].email
    ingress_settings                 = "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision   = true
    environment_variables = merge(
      local.common_env, local.service_env[each.value.service],
      { MLRELAY_SERVICE = each.value.service },
    )

    dynamic "secret_environment_variables" {
      for_each = local.service_secrets[each.value.service]
      content {
        key        = secret_environment_variables.key
        project_id = var.project_id
        secret     = secret_environment_variables.value
        version    = "latest"
      }
    }
  }

  lifecycle {
    precondition {
      condition     = each.value.concurrency <= 1 || try(tonumber(each.value.cpu) >= 1, false)
      error_message = "${each.key}: a concurrency above 1 needs cpu = \"1\" or more (Cloud Run functions); set cpu in var.functions or lower concurrency."
    }
  }
}

# The interactions function (HTTP): Slack's buttons and the /mlrelay slash command. Deployed only
# with a signing secret; public ingress, its own account that publishes commands and reads the
# ledger (iam.tf).
resource "google_cloudfunctions2_function" "interactions" {
  #checkov:skip=CKV_GCP_124:the one public function: Slack posts from the internet and cannot authenticate to Cloud Run, so the function verifies Slack's v0 signature on every request and fails closed without the secret
  count       = var.slack_signing_secret_id == null ? 0 : 1
  project     = var.project_id
  location    = var.region
  name        = "mlrelay-interactions"
  description = "mlrelay interactions: on_slack_request (Slack buttons and /mlrelay) -> ${var.topic_names.commands}"

  build_config {
    runtime     = "python311"
    entry_point = "on_slack_request"
    source {
      storage_source {
        bucket = google_storage_bucket.sources.name
        object = google_storage_bucket_object.package["interactions"].name
      }
    }
  }

  service_config {
    available_memory               = "512Mi"
    timeout_seconds                = 10
    max_instance_count             = 5
    service_account_email          = google_service_account.function["interactions"].email
    ingress_settings               = "ALLOW_ALL" # Slack posts from the internet; every request's signature is checked
    all_traffic_on_latest_revision = true
    environment_variables = merge(
      local.common_env, local.service_env["interactions"],
      { MLRELAY_SERVICE = "interactions" },
    )

    dynamic "secret_environment_variables" {
      for_each = local.service_secrets["interactions"]
      content {
        key        = secret_environment_variables.key
        project_id = var.project_id
        secret     = secret_environment_variables.value
        version    = "latest"
      }
    }
  }
}
