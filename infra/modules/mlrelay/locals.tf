locals {
  # Must equal FUNCTIONS in shared/mlrelay/config/functions.py (the infra tests check).
  # Sizes are defaults; var.functions overrides them per function (cpu null: what Cloud Run
  # functions give the memory, e.g. 0.583 for 1Gi). Concurrency above 1 needs a
  # whole CPU (Cloud Run functions). The notifier's two functions run as one instance with
  # several requests at once, so its Slack pacing holds across all posts (docs/notifications.md).
  function_specs = {
    "mlrelay-trigger" = {
      service = "trigger", entry_point = "on_run_request", topic = "runs", dead_letters = true,
      memory  = "512Mi", cpu = null, timeout_seconds = 60, max_instances = 10, concurrency = 1
      filter  = null
    }
    # the trigger's second function: new attempts (retry, rerun) and missed slots' runs
    # (backfill) from the commands topic
    "mlrelay-attempts" = {
      service = "trigger", entry_point = "on_run_command", topic = "commands", dead_letters = true,
      memory  = "512Mi", cpu = null, timeout_seconds = 60, max_instances = 10, concurrency = 1
      filter  = "attributes.action = \"retry\" OR attributes.action = \"rerun\" OR attributes.action = \"backfill\""
    }
    "mlrelay-snapshotter" = {
      service = "snapshotter", entry_point = "on_snapshot_request", topic = "snapshots", dead_letters = true,
      memory  = "1Gi", cpu = null, timeout_seconds = 540, max_instances = 10, concurrency = 1
      filter  = null
    }
    "mlrelay-deployer" = {
      service = "deployer", entry_point = "on_deploy_request", topic = "deploys", dead_letters = true,
      memory  = "1Gi", cpu = null, timeout_seconds = 300, max_instances = 10, concurrency = 1
      filter  = null
    }
    "mlrelay-cancel" = {
      service = "deployer", entry_point = "on_cancel_command", topic = "commands", dead_letters = true,
      memory  = "1Gi", cpu = null, timeout_seconds = 120, max_instances = 2, concurrency = 1
      filter  = "attributes.action = \"cancel\""
    }
    # the approval gate's decisions: a held run started (approve) or rejected once
    "mlrelay-approvals" = {
      service = "deployer", entry_point = "on_approval_command", topic = "commands", dead_letters = true,
      memory  = "1Gi", cpu = null, timeout_seconds = 300, max_instances = 2, concurrency = 1
      filter  = "attributes.action = \"approve\" OR attributes.action = \"reject\""
    }
    # canary promotion (docs/promotion.md): a succeeded run's model deployed beside the
    # champion, then promoted or rolled back by a command. DeployModel takes minutes: the
    # longest event-driven timeout, the claim's lease renewed meanwhile
    "mlrelay-promotions" = {
      service = "deployer", entry_point = "on_run_succeeded", topic = "lifecycle", dead_letters = true,
      memory  = "512Mi", cpu = null, timeout_seconds = 540, max_instances = 2, concurrency = 1
      filter  = "attributes.event_type = \"lifecycle.pipeline.succeeded\""
    }
    "mlrelay-promotion-commands" = {
      service = "deployer", entry_point = "on_promotion_command", topic = "commands", dead_letters = true,
      memory  = "512Mi", cpu = null, timeout_seconds = 540, max_instances = 2, concurrency = 1
      filter  = "attributes.action = \"promote\" OR attributes.action = \"rollback\""
    }
    # the Vertex AI log relay: an ended job's outcome when its exit handler never reported
    "mlrelay-job-events" = {
      service = "deployer", entry_point = "on_pipeline_job_event", topic = "pipeline_job_events", dead_letters = true,
      memory  = "512Mi", cpu = null, timeout_seconds = 60, max_instances = 5, concurrency = 1
      filter  = null
    }
    # the watchdog: one pass per tick of the `mlrelay-watchdog` Scheduler job (scheduler.tf)
    "mlrelay-watchdog" = {
      service = "deployer", entry_point = "on_watchdog_tick", topic = "watchdog", dead_letters = true,
      memory  = "512Mi", cpu = null, timeout_seconds = 240, max_instances = 1, concurrency = 1
      filter  = null
    }
    "mlrelay-notifier" = {
      service = "notifier", entry_point = "on_lifecycle_event", topic = "lifecycle", dead_letters = true,
      memory  = "512Mi", cpu = "1", timeout_seconds = 60, max_instances = 1, concurrency = 8
      filter  = null
    }
    "mlrelay-dead-letters" = {
      service = "notifier", entry_point = "on_dead_letter", topic = "dead_letter", dead_letters = false,
      memory  = "512Mi", cpu = "1", timeout_seconds = 60, max_instances = 1, concurrency = 8
      filter  = null
    }
  }
  functions = {
    for name, spec in local.function_specs : name => merge(spec, {
      memory          = try(coalesce(var.functions[name].memory), spec.memory)
      cpu             = try(coalesce(var.functions[name].cpu), spec.cpu)
      timeout_seconds = try(coalesce(var.functions[name].timeout_seconds), spec.timeout_seconds)
      max_instances   = try(coalesce(var.functions[name].max_instances), spec.max_instances)
      concurrency     = try(coalesce(var.functions[name].concurrency), spec.concurrency)
    })
  }
  # the services behind a subscription, and all of them (the interactions function is HTTP:
  # HTTP_FUNCTIONS in shared/mlrelay/config/functions.py, functions.tf)
  stage_services = toset([for spec in local.function_specs : spec.service])
  services       = setunion(local.stage_services, ["interactions"])

  # Topics each service publishes to (and nothing else).
  publishes = {
    trigger      = ["snapshots", "deploys", "lifecycle"] # deploys: a rerun on the same snapshot
    snapshotter  = ["deploys", "lifecycle"]
    deployer     = ["lifecycle", "runs", "commands"] # the watchdog: backfills, cancels of stuck runs
    notifier     = ["lifecycle"]
    interactions = ["commands"]
  }

  # Environment of every function: settings are read once at start-up (shared/mlrelay/config/,
  # every variable in docs/configuration.md).
  common_env = {
    MLRELAY_MODE                      = "google"
    GOOGLE_CLOUD_PROJECT              = var.project_id
    MLRELAY_BUCKET                    = google_storage_bucket.snapshots.name
    MLRELAY_REGISTRY                  = "registry/registry.yaml"
    MLRELAY_LOG_FORMAT                = "json"
    MLRELAY_TOPIC_RUNS                = var.topic_names.runs
    MLRELAY_TOPIC_SNAPSHOTS           = var.topic_names.snapshots
    MLRELAY_TOPIC_DEPLOYS             = var.topic_names.deploys
    MLRELAY_TOPIC_LIFECYCLE           = var.topic_names.lifecycle
    MLRELAY_TOPIC_DEAD_LETTER         = var.topic_names.dead_letter
    MLRELAY_TOPIC_COMMANDS            = var.topic_names.commands
    MLRELAY_TOPIC_PIPELINE_JOB_EVENTS = var.topic_names.pipeline_job_events
    MLRELAY_TOPIC_WATCHDOG            = var.topic_names.watchdog
    MLRELAY_MAX_DELIVERY_ATTEMPTS     = tostring(var.max_delivery_attempts)
  }
  service_env = {
    trigger = {}
    snapshotter = {
      MLRELAY_SNAPSHOT_MODE            = var.snapshot_mode
      MLRELAY_BIGQUERY_LOCATION        = var.bigquery_location
      MLRELAY_BIGQUERY_STAGING_DATASET = google_bigquery_dataset.staging.dataset_id
    }
    deployer = {}
    notifier = {
      MLRELAY_SLACK_CHANNEL = var.slack_default_channel
    }
    interactions = {}
  }
  # secrets exposed to a service as environment variables: env var -> secret id
  service_secrets = {
    trigger     = {}
    snapshotter = {}
    # the registry's `kfp.token: team` is MLRELAY_KFP_TOKEN_TEAM
    deployer = { for name, secret in var.kfp_token_secret_ids : "MLRELAY_KFP_TOKEN_${upper(name)}" => secret }
    notifier = merge(
      var.slack_webhook_secret_id == null ? {} : { SLACK_WEBHOOK_URL = var.slack_webhook_secret_id },
      var.slack_bot_token_secret_id == null ? {} : { SLACK_BOT_TOKEN = var.slack_bot_token_secret_id },
    )
    # the signing secret checks every request; the bot token looks up allowed user groups
    interactions = merge(
      var.slack_signing_secret_id == null ? {} : { SLACK_SIGNING_SECRET = var.slack_signing_secret_id },
      var.slack_bot_token_secret_id == null ? {} : { SLACK_BOT_TOKEN = var.slack_bot_token_secret_id },
    )
  }

  schedules = var.manage_schedules ? {
    for job in jsondecode(file(var.schedules_file)) : job.job_id => job
  } : {}
}
