"""A pipeline's run history: one summary per finished run, the notifier's record of what each run
was (status, parameters, metrics, snapshot figures, quality, duration) and what it was compared
with. `mlrelay runs`, `mlrelay report` and the next run's comparison read it back.

```
history/<pipeline>/<run_id>.json     one RunSummary per finished run (rewritten if it moves on)
```

The summary is written by the notifier when a run reaches a final state, so it exists for every
backend (the pipeline's own exit handler reports metrics straight to the notifier). Listing is
by prefix, ordered by the run's logical time.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mlrelay.ports.protocols import ObjectStore

HISTORY = "history/"

FinalStatus = Literal["succeeded", "succeeded_with_regression", "failed", "cancelled"]
GOOD: frozenset[str] = frozenset({"succeeded"})  # a baseline for the next run's comparison


def history_prefix(pipeline: str) -> str:
    return f"{HISTORY}{pipeline}/"


def summary_key(pipeline: str, run_id: str) -> str:
    return f"{history_prefix(pipeline)}{run_id}.json"


class RunSummary(BaseModel):
    """What one finished run was; every field but the identity may be empty (a run that failed
    before its snapshot has no rows)."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    schema_version: Literal[1] = 1
    run_id: str
    pipeline: str
    status: FinalStatus
    schedule: str | None = None  # the schedule whose tick made the run, if any
    trigger: str | None = None
    logical_time: datetime | None = None
    accepted_at: datetime | None = None
    finished_at: datetime | None = None
    duration_seconds: float | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, float] = Field(default_factory=dict)
    rows: int | None = None
    total_bytes: int | None = None
    files: int | None = None
    manifest_uri: str | None = None
    fingerprint: str | None = None
    schema_: list[dict[str, Any]] = Field(default_factory=list, alias="schema")
    # the manifest's `quality` block: one result per expectation (see docs/snapshots.md)
    quality: list[dict[str, Any]] = Field(default_factory=list)
    quality_warnings: list[str] = Field(default_factory=list)  # failed `severity: warn` checks
    failed_task: str | None = None
    error: str | None = None
    baseline_run_id: str | None = None  # the run this one was compared with
    regressions: list[str] = Field(default_factory=list)  # the gates it missed, as sentences

    def to_json(self) -> bytes:
        return json.dumps(self.model_dump(mode="json", by_alias=True), indent=2).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> RunSummary:
        return cls.model_validate(json.loads(raw))


def write_summary(store: ObjectStore, summary: RunSummary) -> None:
    """Idempotent: the same run always lands on the same key (a later, further state wins)."""
    store.write(summary_key(summary.pipeline, summary.run_id), summary.to_json())


def read_summary(store: ObjectStore, pipeline: str, run_id: str) -> RunSummary | None:
    raw = store.read(summary_key(pipeline, run_id))
    return None if raw is None else RunSummary.from_json(raw)


def list_summaries(store: ObjectStore, pipeline: str) -> list[RunSummary]:
    """The pipeline's finished runs, oldest first (by logical time, then run id); an unreadable
    record is skipped, not fatal."""
    found: list[RunSummary] = []
    for key in store.list(history_prefix(pipeline)):
        if not key.endswith(".json"):
            continue
        raw = store.read(key)
        if raw is None:
            continue
        try:
            found.append(RunSummary.from_json(raw))
        except (ValueError, ValidationError):
            continue
    return sorted(found, key=_order)


def last_good(
    store: ObjectStore,
    pipeline: str,
    *,
    before: RunSummary,
    schedule: str | None = None,
) -> RunSummary | None:
    """The newest successful run of `pipeline` earlier than `before` (by logical time), of the
    same schedule when `schedule` is given; None: no baseline."""
    candidates = [
        s
        for s in list_summaries(store, pipeline)
        if s.status in GOOD
        and s.run_id != before.run_id
        and (schedule is None or s.schedule == schedule)
        and _order(s) < _order(before)
    ]
    return candidates[-1] if candidates else None


def _order(summary: RunSummary) -> tuple[str, str]:
    when = summary.logical_time or summary.finished_at or summary.accepted_at
    return (when.astimezone(UTC).isoformat() if when else "", summary.run_id)
