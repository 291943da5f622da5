data "google_project" "this" {
  project_id = var.project_id
}

locals {
  pubsub_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

resource "google_pubsub_topic" "this" {
  for_each     = var.topic_names
  project      = var.project_id
  name         = each.value
  kms_key_name = local.kms_key_region
  depends_on   = [google_kms_crypto_key_iam_member.agents]

  message_retention_duration = "604800s" # a week: replay after an outage
}

# One push subscription per function. The functions are 2nd-gen (Cloud Run) functions; Pub/Sub
# pushes to them directly rather than through an Eventarc-managed subscription, because only a
# subscription we own can carry the dead-letter policy and retry backoff below. functions-framework
# turns the push body into the same CloudEvent Eventarc would deliver (tests/ exercise this path
# against Google's Pub/Sub emulator).
resource "google_pubsub_subscription" "function" {
  for_each = local.functions
  project  = var.project_id
  name     = each.key
  topic    = google_pubsub_topic.this[each.value.topic].id
  # FunctionSpec.only in shared/mlrelay/config/functions.py: e.g. the attempts function reads
  # only the retry, rerun and backfill commands (cancel and approve are another function's)
  filter = each.value.filter

  ack_deadline_seconds       = min(600, max(10, each.value.timeout_seconds))
  message_retention_duration = "604800s"
  retain_acked_messages      = false

  push_config {
    push_endpoint = google_cloudfunctions2_function.this[each.key].service_config[0].uri
    oidc_token {
      service_account_email = google_service_account.pusher.email
      audience              = google_cloudfunctions2_function.this[each.key].service_config[0].uri
    }
    attributes = {
      x-goog-version = "v1"
    }
  }

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  dynamic "dead_letter_policy" {
    for_each = each.value.dead_letters ? [1] : []
    content {
      dead_letter_topic     = google_pubsub_topic.this["dead_letter"].id
      max_delivery_attempts = var.max_delivery_attempts
    }
  }

  expiration_policy {
    ttl = "" # never expire
  }
}

# Dead letters are also kept for `mlrelay deadletters list/replay`: a pull subscription that holds
# them for the maximum retention.
resource "google_pubsub_subscription" "dead_letter_archive" {
  project                    = var.project_id
  name                       = "${var.topic_names.dead_letter}-archive"
  topic                      = google_pubsub_topic.this["dead_letter"].id
  message_retention_duration = "604800s"
  retain_acked_messages      = true
  ack_deadline_seconds       = 60
  expiration_policy {
    ttl = ""
  }
}

# The Pub/Sub service agent forwards undeliverable messages: it must publish to the dead-letter
# topic and subscribe to (acknowledge on) every subscription that has a dead-letter policy.
resource "google_pubsub_topic_iam_member" "agent_publishes_dead_letters" {
  project = var.project_id
  topic   = google_pubsub_topic.this["dead_letter"].name
  role    = "roles/pubsub.publisher"
  member  = local.pubsub_agent
}

resource "google_pubsub_subscription_iam_member" "agent_acks_dead_letters" {
  for_each     = { for name, spec in local.functions : name => spec if spec.dead_letters }
  project      = var.project_id
  subscription = google_pubsub_subscription.function[each.key].name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_agent
}

# ...and mint OIDC tokens for the push identity.
resource "google_service_account_iam_member" "agent_signs_push_tokens" {
  service_account_id = google_service_account.pusher.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_agent
}
