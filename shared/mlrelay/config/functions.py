"""The deployed functions: name, code package, entry point and the topic that triggers each.

The local runtime, the packaging and Terraform all read this table, so they cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class AttributeFilter:
    """A subscription filter on one message attribute: only these values are delivered."""

    attribute: str
    values: tuple[str, ...]

    def expression(self) -> str:
        """Pub/Sub's filter syntax (the subscription's `filter`, also written by Terraform)."""
        return " OR ".join(f'attributes.{self.attribute} = "{v}"' for v in self.values)

    def matches(self, attributes: Mapping[str, str]) -> bool:
        return attributes.get(self.attribute) in self.values


@dataclass(frozen=True)
class FunctionSpec:
    name: str  # Cloud Function name, also the subscription name on the local bus
    service_dir: str  # services/<service_dir>/
    package: str  # the service's code package (entry points in <package>.entry)
    entry_point: str
    topic: str  # a field of Topics
    dead_letters_to_topic: bool = True  # failed deliveries go on to the dead-letter topic
    only: AttributeFilter | None = None  # the subscription's filter; None: every message


FUNCTIONS: tuple[FunctionSpec, ...] = (
    FunctionSpec("mlrelay-trigger", "trigger", "mlrelay_trigger", "on_run_request", "runs"),
    # the trigger makes runs, so it makes their new attempts too (retry, rerun on the snapshot)
    # and a missed slot's run (backfill)
    FunctionSpec(
        "mlrelay-attempts",
        "trigger",
        "mlrelay_trigger",
        "on_run_command",
        "commands",
        only=AttributeFilter("action", ("retry", "rerun", "backfill")),
    ),
    FunctionSpec(
        "mlrelay-snapshotter",
        "snapshotter",
        "mlrelay_snapshotter",
        "on_snapshot_request",
        "snapshots",
    ),
    FunctionSpec(
        "mlrelay-deployer", "deployer", "mlrelay_deployer", "on_deploy_request", "deploys"
    ),
    FunctionSpec(
        "mlrelay-cancel",
        "deployer",
        "mlrelay_deployer",
        "on_cancel_command",
        "commands",
        only=AttributeFilter("action", ("cancel",)),
    ),
    # the approval gate's decisions: a held run started once, or rejected once
    FunctionSpec(
        "mlrelay-approvals",
        "deployer",
        "mlrelay_deployer",
        "on_approval_command",
        "commands",
        only=AttributeFilter("action", ("approve", "reject")),
    ),
    # canary promotion: a successful run's model deployed beside the champion
    # (docs/promotion.md), then promoted or rolled back by a command
    FunctionSpec(
        "mlrelay-promotions",
        "deployer",
        "mlrelay_deployer",
        "on_run_succeeded",
        "lifecycle",
        only=AttributeFilter("event_type", ("lifecycle.pipeline.succeeded",)),
    ),
    FunctionSpec(
        "mlrelay-promotion-commands",
        "deployer",
        "mlrelay_deployer",
        "on_promotion_command",
        "commands",
        only=AttributeFilter("action", ("promote", "rollback")),
    ),
    # the Vertex AI log relay: a job's end from Cloud Logging, when its exit handler never ran
    FunctionSpec(
        "mlrelay-job-events",
        "deployer",
        "mlrelay_deployer",
        "on_pipeline_job_event",
        "pipeline_job_events",
    ),
    # one pass over the open runs and the schedules' slots per tick (docs/watchdog.md)
    FunctionSpec(
        "mlrelay-watchdog", "deployer", "mlrelay_deployer", "on_watchdog_tick", "watchdog"
    ),
    FunctionSpec(
        "mlrelay-notifier", "notifier", "mlrelay_notifier", "on_lifecycle_event", "lifecycle"
    ),
    FunctionSpec(
        "mlrelay-dead-letters",
        "notifier",
        "mlrelay_notifier",
        "on_dead_letter",
        "dead_letter",
        dead_letters_to_topic=False,
    ),
)


@dataclass(frozen=True)
class HttpFunctionSpec:
    """A function called over HTTP (no topic, no subscription, no dead letters): the public door
    for Slack's interactivity. Kept apart from FUNCTIONS, whose every row is a subscription."""

    name: str
    service_dir: str
    package: str
    entry_point: str
    publishes: tuple[str, ...]  # fields of Topics


HTTP_FUNCTIONS: tuple[HttpFunctionSpec, ...] = (
    HttpFunctionSpec(
        "mlrelay-interactions",
        "interactions",
        "mlrelay_interactions",
        "on_slack_request",
        publishes=("commands",),
    ),
)
