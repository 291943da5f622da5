"""`mlrelay run`: the whole flow on this machine, with live progress and a final summary."""

from __future__ import annotations

import getpass
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from mlrelay.comparison import compare, describe_comparison
from mlrelay.config.settings import Settings
from mlrelay.contracts import RunRequest, Scalar
from mlrelay.history import read_summary
from mlrelay.ports.container import Ports
from mlrelay.ports.protocols import ObjectStore
from mlrelay.stage.ledger import StageRecord, read_run
from mlrelay_tools.cli.progress import RunProgress
from mlrelay_tools.demo import seed_demo_warehouse
from mlrelay_tools.local.runtime import build_local_runtime


class CountingChat:
    """Passes messages through to the notifier's chat and tells the display about each
    one (posts and thread replies; in-place updates of a run's Slack message are not counted)."""

    def __init__(self, inner: Any, on_post: Callable[[], None]) -> None:
        from mlrelay_notifier.chat_choice import as_chat

        self.inner = as_chat(inner)
        self.name = self.inner.name
        self.threads = self.inner.threads
        self.on_post = on_post

    def send(self, message: Any, **kwargs: Any) -> Any:
        posted = self.inner.send(message, **kwargs)
        self.on_post()
        return posted

    def update(self, message: Any, **kwargs: Any) -> None:
        self.inner.update(message, **kwargs)


@dataclass
class RunSummary:
    run_id: str | None
    status: str
    reason: str | None
    records: dict[str, StageRecord]
    notifications: int
    wall_seconds: float
    dead_lettered: int
    reused: list[str]
    # the notifier's verdict: (baseline run id or None, the deltas against it)
    compared: tuple[str | None, list[str]] | None = None


def settled(
    store: ObjectStore, pipeline: str, status: str, reason: str | None, run_id: str | None
) -> tuple[str, str | None, tuple[str | None, list[str]] | None]:
    """The notifier's verdict from the run history: a success that missed a metric gate is
    `succeeded_with_regression`; with the deltas against the last good run."""
    record = read_summary(store, pipeline, run_id) if run_id else None
    if record is None or record.status in ("failed", "cancelled"):
        return status, reason, None
    baseline = record.baseline_run_id
    found = read_summary(store, pipeline, baseline) if baseline else None
    compared = (baseline, describe_comparison(compare(record, found)))
    if status == "succeeded" and record.status != "succeeded":
        return record.status, "; ".join(record.regressions) or None, compared
    return status, reason, compared


def final_status(progress: RunProgress) -> tuple[str, str | None]:
    for event in reversed(progress.events):
        if event.status in ("rejected", "failed", "dead_lettered"):
            return event.status, event.error or event.summary
        if event.event_type == "pipeline.succeeded":
            return "succeeded", None
        if event.event_type == "pipeline.cancelled":
            return "cancelled", event.summary
        if event.event_type == "pipeline.held":
            return "held", f"waiting for approval: mlrelay approve {event.run_id}"
    return "incomplete", "the flow stopped before the pipeline reported"


def run_locally(
    settings: Settings,
    pipeline: str,
    parameters: dict[str, Scalar],
    dedup_key: str | None,
    console: Console,
) -> RunSummary:
    from mlrelay_notifier.chat_choice import build_chat

    began = time.perf_counter()
    seed_demo_warehouse(settings.warehouse_path)
    progress = RunProgress(settings.topics.lifecycle)
    chat = CountingChat(build_chat(Ports(settings)), progress.on_notification)
    runtime = build_local_runtime(settings, chat=chat)
    request: dict[str, Any] = {
        "schema_version": 1,
        "pipeline": pipeline,
        "parameters": parameters,
        "dedup_key": dedup_key or f"manual-{uuid.uuid4().hex[:12]}",
        "trigger": "manual",
        "requested_by": getpass.getuser(),
    }
    with Live(progress.renderable(), console=console, refresh_per_second=10) as live:
        runtime.bus.listen(progress.on_message)
        runtime.bus.listen(lambda _topic, _message: live.update(progress.renderable()))
        # raw JSON, as any publisher would send it: even a malformed request takes the real path
        runtime.bus.publish(
            settings.topics.runs,
            json.dumps(request).encode(),
            {"event_type": RunRequest.kind, "pipeline": pipeline},
        )
        stats = runtime.bus.run_until_idle()
        live.update(progress.renderable())
    status, reason = final_status(progress)
    status, reason, compared = settled(runtime.store, pipeline, status, reason, progress.run_id)
    records = read_run(runtime.store, progress.run_id) if progress.run_id else {}
    return RunSummary(
        progress.run_id,
        status,
        reason,
        records,
        progress.notifications,
        time.perf_counter() - began,
        stats.dead_lettered,
        sorted(progress.reused),
        compared,
    )


def summary_table(summary: RunSummary) -> Table:
    table = Table(show_header=False, box=None, padding=(0, 2))
    style = {
        "succeeded": "bold green",
        "succeeded_with_regression": "bold yellow",
        "held": "bold yellow",
    }.get(summary.status, "bold red")
    table.add_row("status", f"[{style}]{summary.status}[/]")
    table.add_row("run id", summary.run_id or "-")
    if summary.reason:
        table.add_row("reason", summary.reason)
    trigger = summary.records.get("trigger")
    if trigger and trigger.result:
        table.add_row("parameters", json.dumps(trigger.result.get("parameters", {})))
    snap = summary.records.get("snapshot")
    if snap and snap.result:
        r = snap.result
        table.add_row(
            "snapshot",
            f"{r['row_count']} rows, {r['file_count']} file(s), {r['total_bytes']:,} bytes",
        )
        table.add_row("manifest", r["manifest_uri"])
    deploy = summary.records.get("pipeline")
    if deploy and deploy.result:
        r = deploy.result
        metrics = ", ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
            for k, v in r.get("metrics", {}).items()
        )
        table.add_row("pipeline", f"{r['status']} in {r['duration_seconds']:.1f}s ({r['backend']})")
        if metrics:
            table.add_row("metrics", metrics)
        for name, uri in r.get("outputs", {}).items():
            table.add_row(f"output {name}", uri)
    if summary.compared is not None:
        baseline, lines = summary.compared
        table.add_row(f"vs {baseline}" if baseline else "vs last good", "\n".join(lines))
    if summary.reused:
        table.add_row("reused", ", ".join(summary.reused) + " (recorded earlier: no work redone)")
    table.add_row("notifications", f"{summary.notifications} sent")
    if summary.dead_lettered:
        table.add_row("dead-lettered", str(summary.dead_lettered))
    table.add_row("wall time", f"{summary.wall_seconds:.1f}s")
    return table
