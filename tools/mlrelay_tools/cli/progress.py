"""Live per-stage progress of one local run, fed by the lifecycle events on the bus."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from rich.console import Group
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from mlrelay.contracts import LifecycleEvent
from mlrelay.stage.envelope import PubsubMessage

STAGES = ("trigger", "snapshot", "pipeline", "notify")
STYLE = {
    "waiting": "dim",
    "running": "yellow",
    "held": "bold yellow",
    "done": "green",
    "failed": "bold red",
}


@dataclass
class StageLine:
    state: str = "waiting"
    detail: str = ""
    started: float | None = None
    finished: float | None = None


@dataclass
class RunProgress:
    lifecycle_topic: str
    stages: dict[str, StageLine] = field(default_factory=lambda: {s: StageLine() for s in STAGES})
    events: list[LifecycleEvent] = field(default_factory=list)
    notifications: int = 0
    run_id: str | None = None
    reused: set[str] = field(default_factory=set)

    def on_message(self, topic: str, message: PubsubMessage) -> None:
        if topic != self.lifecycle_topic:
            return
        event = LifecycleEvent.model_validate(json.loads(message.data))
        self.events.append(event)
        if self.run_id is None and event.stage == "trigger":
            self.run_id = event.run_id
        line = self.stages.get(event.stage)
        if line is None:
            return
        if event.details.get("reused"):
            self.reused.add(event.stage)
        now = time.perf_counter()
        if event.status in ("started", "submitted", "accepted") and line.started is None:
            line.started = now
        if event.status in ("started", "submitted"):
            line.state, line.detail = "running", event.summary
        elif event.status == "held":  # the approval gate: `mlrelay approve RUN_ID` goes on
            line.state, line.detail = "held", event.summary
        elif event.status in ("accepted", "completed", "succeeded"):
            line.state, line.detail, line.finished = "done", event.summary, now
            if event.details.get("reused"):
                line.detail += " (reused)"
        elif event.status in ("failed", "rejected", "dead_lettered"):
            line.state, line.detail, line.finished = "failed", event.error or event.summary, now

    def on_notification(self) -> None:
        self.notifications += 1
        line = self.stages["notify"]
        line.state, line.detail = "done", f"{self.notifications} sent"

    def render(self) -> Table:
        table = Table.grid(padding=(0, 2))
        for name in STAGES:
            line = self.stages[name]
            icon: Spinner | Text
            if line.state == "running":
                icon = Spinner("dots", style="yellow")
            else:
                icon = Text(
                    {"waiting": "·", "held": "✋", "done": "✔", "failed": "✘"}[line.state],
                    style=STYLE[line.state],
                )
            table.add_row(
                icon, Text(name, style="bold"), Text(line.detail[:100], style=STYLE[line.state])
            )
        return table

    def renderable(self) -> Group:
        return Group(self.render())
