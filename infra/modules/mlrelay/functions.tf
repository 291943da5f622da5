# The five functions (four services; the notifier's package serves two entry points).
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
    available_memory               = each.value.memory
    timeout_seconds                = each.value.timeout_seconds
    max_instance_count             = each.value.max_instances
    service_account_email          = google_service_account.function[each.value.service].email
    ingress_settings               = "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision = true
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
}
