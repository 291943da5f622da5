"""Messages published per run, by topic and event type, as the observer subscriptions saw them.

Every topic has one observer pull subscription, so each publish is seen once there whatever the
number of push subscriptions (duplicates). The run requests the test itself published count too:
they are the run's first message.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from .cloud import Harness


@dataclass(frozen=True)
class MessageCounts:
    runs: int
    by_kind: Counter[tuple[str, str]]  # (topic, event type) -> messages, over all runs
    per_run: dict[str, int]  # run id -> messages published for it, its run request included

    @property
    def total(self) -> int:
        return sum(self.by_kind.values())

    @property
    def most_per_run(self) -> int:
        return max(self.per_run.values(), default=0)

    def lines(self) -> list[str]:
        runs = max(self.runs, 1)
        lines = [
            f"{'messages published per run':38} {self.total / runs:6.1f} (most {self.most_per_run})"
        ]
        for (topic, kind), count in sorted(self.by_kind.items()):
            lines.append(f"  {topic + ' ' + kind:36} {count / runs:6.2f}")
        return lines


def count_messages(harness: Harness, run_ids: set[str]) -> MessageCounts:
    """Messages the services (and the completion reporter) published for `run_ids`, plus the
    run requests of those runs (one a run: the requests carry no run id yet)."""
    harness.drain()
    by_kind: Counter[tuple[str, str]] = Counter()
    per_run: Counter[str] = Counter()
    for topic in harness.observed:
        for message in harness.published(topic):
            attributes = dict(message.attributes)
            run_id = attributes.get("run_id")
            if run_id not in run_ids:
                continue
            by_kind[(topic, attributes.get("event_type", "?"))] += 1
            per_run[run_id] += 1
    requests = len(run_ids)
    by_kind[(harness.topics.runs, "run_request")] += requests
    return MessageCounts(len(run_ids), by_kind, {r: per_run[r] + 1 for r in run_ids})
