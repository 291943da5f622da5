"""Topic names: the one place they are defined, shared by code, the local bus and Terraform."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

from mlrelay.config.env import read_section, setting

DEFAULT_TOPICS: dict[str, str] = {
    "runs": "mlrelay-runs",
    "snapshots": "mlrelay-snapshots",
    "deploys": "mlrelay-deploys",
    "lifecycle": "mlrelay-lifecycle",
    "dead_letter": "mlrelay-dead-letter",
    "commands": "mlrelay-commands",
    "pipeline_job_events": "mlrelay-pipeline-job-events",
    "watchdog": "mlrelay-watchdog",
}


@dataclass(frozen=True)
class Topics:
    """The Pub/Sub topics the functions read and publish to."""

    runs: str = setting(
        "MLRELAY_TOPIC_RUNS",
        "Run requests (Cloud Scheduler, `mlrelay trigger`, any publisher); the trigger reads it.",
        default=DEFAULT_TOPICS["runs"],
    )
    snapshots: str = setting(
        "MLRELAY_TOPIC_SNAPSHOTS",
        "Snapshot requests from the trigger; the snapshotter reads it.",
        default=DEFAULT_TOPICS["snapshots"],
    )
    deploys: str = setting(
        "MLRELAY_TOPIC_DEPLOYS",
        "Deploy requests from the snapshotter; the deployer reads it.",
        default=DEFAULT_TOPICS["deploys"],
    )
    lifecycle: str = setting(
        "MLRELAY_TOPIC_LIFECYCLE",
        "Lifecycle events from every stage and the pipeline's reporter; the notifier reads it.",
        default=DEFAULT_TOPICS["lifecycle"],
    )
    dead_letter: str = setting(
        "MLRELAY_TOPIC_DEAD_LETTER",
        "Where failed deliveries go after the attempt limit; the dead-letter function reads it.",
        default=DEFAULT_TOPICS["dead_letter"],
    )
    commands: str = setting(
        "MLRELAY_TOPIC_COMMANDS",
        "Run commands (retry, rerun, cancel, approve, reject) from Slack's buttons and the "
        "`/mlrelay` slash command; the interactions function publishes them.",
        default=DEFAULT_TOPICS["commands"],
    )
    pipeline_job_events: str = setting(
        "MLRELAY_TOPIC_PIPELINE_JOB_EVENTS",
        "Vertex AI pipeline job log entries (terminal states) from the log sink; the "
        "`mlrelay-job-events` relay reads it.",
        default=DEFAULT_TOPICS["pipeline_job_events"],
    )
    watchdog: str = setting(
        "MLRELAY_TOPIC_WATCHDOG",
        "The watchdog's ticks (Cloud Scheduler job `mlrelay-watchdog`, every 5 minutes); the "
        "watchdog function reads it and makes one pass per tick.",
        default=DEFAULT_TOPICS["watchdog"],
    )

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Topics:
        return read_section(cls, {k: v for k, v in env.items() if v})

    def all(self) -> list[str]:
        return [getattr(self, f.name) for f in fields(self)]
