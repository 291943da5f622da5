"""Exactly-once figures counted from real effects: snapshot manifests in the GCS emulator, jobs
created on the loopback Vertex AI, top-level messages the loopback Slack keeps."""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field

from .cloud import CHANNEL, Harness

_RUN_IN_TEXT = re.compile(r"run ([a-z][a-z0-9-]{2,127})")
_FINAL_IN_TEXT = re.compile(r"pipeline\.(succeeded|failed|cancelled)")
FINAL_EVENTS = ("pipeline.succeeded", "pipeline.failed", "pipeline.cancelled", "snapshot.failed")


@dataclass
class Figures:
    requested: int  # run requests the test published
    messages_published: int  # every message any topic carried (observer subscriptions)
    deliveries: int  # pushes that reached a function (duplicates and retries included)
    failed_deliveries: int  # pushes answered with an error (redelivered)
    runs_completed: int
    snapshots: Counter[str] = field(default_factory=Counter)  # run_id -> manifests
    jobs: Counter[str] = field(default_factory=Counter)  # run_id -> Vertex jobs / KFP runs
    posts: Counter[str] = field(default_factory=Counter)  # run_id -> the run's Slack message
    # run_id -> the final states its thread announced (pipeline.succeeded / failed / cancelled)
    final_states: dict[str, list[str]] = field(default_factory=dict)
    alerts: Counter[str] = field(default_factory=Counter)  # run_id -> dead-letter alerts
    lost: list[str] = field(default_factory=list)  # requested runs with no final outcome
    dead_lettered: int = 0
    replayed: int = 0

    def per_run(self, counter: Counter[str], run_ids: set[str]) -> set[int]:
        return {counter[r] for r in run_ids}

    def final_counts(self, run_ids: set[str]) -> set[int]:
        return {len(self.final_states.get(r, [])) for r in run_ids}

    def lines(self, run_ids: set[str]) -> list[str]:
        return [
            f"run requests published     {self.requested}",
            f"messages published         {self.messages_published}",
            f"deliveries (with dups)     {self.deliveries} ({self.failed_deliveries} answered "
            "with an error and redelivered)",
            f"runs completed             {self.runs_completed}",
            f"snapshots per run          {sorted(self.per_run(self.snapshots, run_ids))}",
            f"pipeline jobs per run      {sorted(self.per_run(self.jobs, run_ids))}",
            f"Slack posts per run        {sorted(self.per_run(self.posts, run_ids))}",
            f"final states per run       {sorted(self.final_counts(run_ids))}",
            f"messages lost              {len(self.lost)}",
            f"dead-lettered              {self.dead_lettered}",
            f"replayed                   {self.replayed}",
        ]


def count_figures(harness: Harness, requested: dict[str, str]) -> Figures:
    """`requested`: dedup_key -> pipeline of every run request published."""
    harness.drain()
    accepted = {e.run_id: e for e in harness.events() if e.event_type == "trigger.accepted"}
    finished = {e.run_id for e in harness.events() if e.event_type in FINAL_EVENTS}
    lost = [
        key
        for key, pipeline in requested.items()
        if not any(
            run_id in finished and run_id.startswith(f"{pipeline}-{key}-") for run_id in accepted
        )
    ]
    snapshots: Counter[str] = Counter()
    for name in harness.blobs("snapshots/"):
        parts = name.split("/")
        if len(parts) == 4 and parts[3] == "manifest.json":
            snapshots[parts[2]] += 1
    jobs: Counter[str] = Counter()
    for values in harness.pipeline_jobs().values():
        jobs[values["run_id"]] += 1
    posts: Counter[str] = Counter()
    alerts: Counter[str] = Counter()
    final_states: dict[str, list[str]] = {}
    for message in harness.slack.channel_messages(CHANNEL):
        found = _RUN_IN_TEXT.search(message.text)
        state = _FINAL_IN_TEXT.search(message.text)
        if message.thread_ts is not None and found and state:  # a status change in its thread
            final_states.setdefault(found.group(1), []).append(state.group(1))
        if message.thread_ts is None and found:
            # the notifier alerts about a dead letter in a message of its own
            kind = alerts if "delivery.dead_lettered" in message.text else posts
            kind[found.group(1)] += 1
    deliveries = failed = 0
    for service in harness.services.values():
        with service.proxy.lock:
            for status, count in service.proxy.requests.items():
                deliveries += count
                failed += count if status != "200" else 0
    letters = [
        json.loads(harness.storage().bucket("mlrelay-harness-bucket").blob(n).download_as_bytes())
        for n in harness.blobs("deadletters/")
    ]
    return Figures(
        requested=len(requested),
        messages_published=sum(len(harness.published(t)) for t in harness.topics.all()),
        deliveries=deliveries,
        failed_deliveries=failed,
        runs_completed=len(finished & set(accepted)),
        snapshots=snapshots,
        jobs=jobs,
        posts=posts,
        final_states=final_states,
        alerts=alerts,
        lost=lost,
        dead_lettered=len(letters),
        replayed=sum(1 for letter in letters if letter.get("replayed_at")),
    )
