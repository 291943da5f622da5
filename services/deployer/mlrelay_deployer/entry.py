"""The deployer's CloudEvent handler (main.py registers it with functions-framework)."""

from __future__ import annotations

from cloudevents.http import CloudEvent

from mlrelay.contracts import DeployRequest, LifecycleEvent, RunCommand
from mlrelay.errors import ConfigurationError
from mlrelay.ports.container import current_ports
from mlrelay.stage.doorway import RedeliverAfterFix, handle_pubsub_event, report_configuration_error
from mlrelay_deployer.approvals import approve_or_reject
from mlrelay_deployer.cancel import cancel_for_command
from mlrelay_deployer.deploy import deploy_for_run
from mlrelay_deployer.job_events import PipelineJobLogEntry, relay_for_entry
from mlrelay_deployer.promotion.commands import promote_or_roll_back
from mlrelay_deployer.promotion.flow import promote_after_success


def on_deploy_request(event: CloudEvent) -> None:
    """Pub/Sub `deploys` topic -> one pipeline run per run id."""
    handle_pubsub_event(event, DeployRequest, stage="pipeline", work=deploy_for_run)


def on_cancel_command(event: CloudEvent) -> None:
    """Pub/Sub `commands` topic, `attributes.action = "cancel"` -> the run's job stopped once."""
    handle_pubsub_event(event, RunCommand, stage="pipeline", work=cancel_for_command)


def on_approval_command(event: CloudEvent) -> None:
    """Pub/Sub `commands` topic, `attributes.action` approve or reject -> the held run started
    once, or rejected once."""
    handle_pubsub_event(event, RunCommand, stage="pipeline", work=approve_or_reject)


def on_run_succeeded(event: CloudEvent) -> None:
    """Pub/Sub `lifecycle` topic, `attributes.event_type = "lifecycle.pipeline.succeeded"` ->
    the run's model deployed once beside the champion (docs/promotion.md)."""
    handle_pubsub_event(event, LifecycleEvent, stage="promotion", work=promote_after_success)


def on_promotion_command(event: CloudEvent) -> None:
    """Pub/Sub `commands` topic, `attributes.action` promote or rollback -> the canary's one
    decision, carried out once."""
    handle_pubsub_event(event, RunCommand, stage="promotion", work=promote_or_roll_back)


def on_pipeline_job_event(event: CloudEvent) -> None:
    """Pub/Sub `pipeline_job_events` topic (the Vertex AI log sink) -> a job's final event."""
    handle_pubsub_event(event, PipelineJobLogEntry, stage="pipeline", work=relay_for_entry)


def on_watchdog_tick(event: CloudEvent) -> None:
    """Pub/Sub `watchdog` topic (Cloud Scheduler, every 5 min) -> one watchdog pass. The tick's
    body is not read: every tick asks the same question of the ledger and the schedules. A
    transient failure raises, so the tick is redelivered; each finding is published once."""
    from mlrelay_deployer.watchdog.sweep import run_pass
    from mlrelay_deployer.watchdog.wiring import watchdog_deps

    try:
        run_pass(watchdog_deps(current_ports()))
    except ConfigurationError as exc:
        report_configuration_error("pipeline", exc)
        raise RedeliverAfterFix(exc) from exc
