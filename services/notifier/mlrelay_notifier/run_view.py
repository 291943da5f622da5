"""Everything a run's message shows, gathered from the event and the run's ledger.

Lifecycle events carry what happened at one stage; the ledger (`runs/<run_id>/*.json`) carries
who asked for the run, its parameters, the snapshot and the pipeline's outcome. A message built
from both shows the run's furthest state even when events arrive late or out of order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

from mlrelay.comparison import Comparison
from mlrelay.contracts import LifecycleEvent
from mlrelay.stage.ledger import StageRecord
from mlrelay_notifier.model_section import ModelSection
from mlrelay_notifier.used_actions import UsedAction

# how far a run has got; the message of a run never goes back to an earlier state
RANK = {
    "accepted": 1,
    "started": 2,
    "completed": 3,
    "held": 4,  # the approval gate waits for a person (not final: approval starts the job)
    "submitted": 5,
    # the watchdog's word on a run still going: the card shows it (amber) until the outcome
    "stuck": 5,
    "deadline_missed": 5,
    "succeeded": 6,
    "failed": 6,
    "cancelled": 6,  # stopped by a cancel command (details.command says who)
    "rejected": 6,  # a held run an approver rejected, or whose approval timed out
    "succeeded_with_regression": 7,  # the notifier's verdict on a success (a missed gate)
}
FINAL = {"succeeded", "failed", "cancelled"}


def on_run_card(event: LifecycleEvent) -> bool:
    """Whether the event moves the run's one message (bot mode): every run status, and a
    rejection of a held run; a message the trigger rejected has no run, so it posts on its own."""
    if event.status == "rejected":
        return event.stage == "pipeline"
    return event.status in RANK


@dataclass(frozen=True)
class SnapshotFacts:
    rows: int
    bytes: int
    files: int
    uri: str


@dataclass(frozen=True)
class RunView:
    run_id: str
    pipeline: str | None
    status: str  # the run's furthest status (or rejected / dead_lettered)
    stage: str  # the stage that status belongs to
    summary: str
    occurred_at: datetime
    trigger: str | None = None
    requested_by: str | None = None
    logical_time: str | None = None
    accepted_at: datetime | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    snapshot: SnapshotFacts | None = None
    links: dict[str, str] = field(default_factory=dict)  # name -> URL or URI
    failed_task: str | None = None
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    # set on a final view by the notifier's verdict (mlrelay_notifier.verdict)
    comparison: Comparison | None = None
    regressions: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # the commands carried out on this run (mlrelay_notifier.used_actions): their buttons go
    used: tuple[UsedAction, ...] = ()
    # bot mode, and the pipeline's allowlist names someone: the card carries its buttons
    interactive: bool = False
    # a final view of a run that missed its deadline: how long after it the run ended
    late_by_seconds: float | None = None
    # the run's model on its endpoint (canary, promoted, ...: mlrelay_notifier.model_section)
    model: ModelSection | None = None

    @property
    def quality_warnings(self) -> list[str]:
        """The verdict's, else those the snapshot event carries (`details.quality_warnings`)."""
        return self.warnings or [str(w) for w in self.details.get("quality_warnings") or []]

    @property
    def event_type(self) -> str:
        return f"{self.stage}.{self.status}"

    @property
    def duration_seconds(self) -> float | None:
        if self.accepted_at is None:
            return None
        return max(0.0, (self.occurred_at - self.accepted_at).total_seconds())


def _when(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _ledger_status(records: dict[str, StageRecord]) -> tuple[str, str, StageRecord] | None:
    """(status, stage, record) of the furthest stage the ledger shows."""
    deploy, snapshot, trigger = (records.get(s) for s in ("pipeline", "snapshot", "trigger"))
    if deploy is not None:
        if deploy.state == "failed":
            return "failed", "pipeline", deploy
        result = deploy.result or {}
        status = str(result.get("status", "submitted")) if deploy.state == "done" else "submitted"
        return (status if status in RANK else "submitted"), "pipeline", deploy
    if snapshot is not None:
        status = {"failed": "failed", "done": "completed"}.get(snapshot.state, "started")
        return status, "snapshot", snapshot
    if trigger is not None and trigger.state == "done":
        return "accepted", "trigger", trigger
    return None


def cloud_logging_url(project: str, run_id: str) -> str:
    """Logs Explorer on every line of the run (the console's default window is only an hour;
    30 days is Cloud Logging's default retention)."""
    query = quote(f'labels.run_id="{run_id}"', safe="")
    return (
        f"https://console.cloud.google.com/logs/query;query={query};duration=P30D?project={project}"
    )


def browsable(uri: str, project: str | None) -> str:
    """gs://bucket/key -> its Cloud Console page; http(s) as is; anything else unchanged."""
    if uri.startswith("gs://") and project:
        bucket_and_key = uri.removeprefix("gs://")
        return (
            f"https://console.cloud.google.com/storage/browser/_details/{bucket_and_key}"
            f"?project={project}"
        )
    return uri


def build_run_view(
    event: LifecycleEvent,
    records: dict[str, StageRecord],
    *,
    project: str | None = None,
    advance: bool = True,
) -> RunView:
    """The run as the event and the ledger describe it. With `advance`, the furthest state of
    the two wins (the run's message); without, the event's own status is kept (a message about
    this status change, with the ledger's facts)."""
    status: str = event.status
    stage: str = event.stage
    occurred_at = event.occurred_at
    summary, error = event.summary, event.error
    metrics: dict[str, Any] = {k: v for k, v in event.figures.items()}
    links = dict(event.links)
    failed_task = event.details.get("failed_task")
    deploy_result = (records.get("pipeline") or StageRecord("pipeline", "running", "")).result or {}
    ledger = _ledger_status(records) if status in RANK and advance else None
    if ledger is not None and RANK[ledger[0]] > RANK[status]:
        status, stage, record = ledger
        occurred_at = _when(record.finished_at) or occurred_at
        summary = {
            "failed": f"{stage} failed",
            "succeeded": "pipeline succeeded",
            "cancelled": "pipeline cancelled",
            "submitted": "pipeline running",
            "completed": "snapshot ready",
            "started": "snapshot running",
        }.get(status, summary)
        error = (record.error or deploy_result.get("error")) if status == "failed" else None
        failed_task = deploy_result.get("failed_task") if status == "failed" else None
    if status in FINAL:
        metrics = {**{k: v for k, v in deploy_result.get("metrics", {}).items()}, **metrics}
        links = {**deploy_result.get("links", {}), **links}
    trigger = (records.get("trigger") or StageRecord("trigger", "running", "")).result or {}
    snapshot = (records.get("snapshot") or StageRecord("snapshot", "running", "")).result
    facts = None
    if snapshot and "manifest_uri" in snapshot:
        facts = SnapshotFacts(
            int(snapshot.get("row_count", 0)),
            int(snapshot.get("total_bytes", 0)),
            int(snapshot.get("file_count", 0)),
            str(snapshot["manifest_uri"]),
        )
        links.setdefault("snapshot", browsable(facts.uri, project))
    if project and project != "local" and status in RANK:
        links.setdefault("logs", cloud_logging_url(project, event.run_id))
    metrics.pop("duration_seconds", None)  # the message shows the run's own duration
    for name in ("rows", "bytes", "files"):
        if facts is not None:
            metrics.pop(name, None)
    return RunView(
        run_id=event.run_id,
        pipeline=event.pipeline or trigger.get("pipeline"),
        status=status,
        stage=stage,
        summary=summary,
        occurred_at=occurred_at,
        trigger=event.trigger or trigger.get("trigger"),
        requested_by=trigger.get("requested_by") or event.details.get("requested_by"),
        logical_time=trigger.get("logical_time") or event.details.get("logical_time"),
        accepted_at=_when(trigger.get("accepted_at")),
        parameters=dict(event.parameters or trigger.get("parameters") or {}),
        metrics=metrics,
        snapshot=facts,
        links=links,
        failed_task=failed_task,
        error=error,
        details=dict(event.details),
    )
