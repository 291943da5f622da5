"""The deployed functions: name, code package, entry point and the topic that triggers each.

The local runtime, the packaging and Terraform all read this table, so they cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FunctionSpec:
    name: str  # Cloud Function name, also the subscription name on the local bus
    service_dir: str  # services/<service_dir>/
    package: str  # the service's code package (entry points in <package>.entry)
    entry_point: str
    topic: str  # a field of Topics
    dead_letters_to_topic: bool = True  # failed deliveries go on to the dead-letter topic
    # a Pub/Sub subscription filter (the same syntax on the local bus): only these messages
    filter: str = ""


FUNCTIONS: tuple[FunctionSpec, ...] = (
    FunctionSpec("mlrelay-trigger", "trigger", "mlrelay_trigger", "on_run_request", "runs"),
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
        filter='attributes.action = "cancel"',
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
