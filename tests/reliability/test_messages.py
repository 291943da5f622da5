"""Messages published per run, through the cloud-shaped harness with transient faults on every
peer: at most 10 a run (mean over the burst) when each message is delivered once, at most 20
when every message is delivered three times, and every run's effects still exactly once. A
finished stage's redelivery re-publishes only what is not known to be out (its `published`
marker, the next stage's record, the notifier's claim: mlrelay.stage.echoes); bench/messages.py
prints the same figures for a larger burst."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.reliability.harness.cloud import cloud_harness
from tests.reliability.harness.load import burst
from tests.reliability.harness.messages import count_messages

RUNS = int(os.environ.get("MLRELAY_MESSAGES_RUNS", "10"))
PIPELINES = 5


@pytest.mark.parametrize(("duplicates", "per_run"), [(1, 10), (3, 20)])
def test_messages_per_run_stay_within_the_goal_with_effects_exactly_once(
    tmp_path: Path, duplicates: int, per_run: int
) -> None:
    with cloud_harness(tmp_path, pipelines=PIPELINES, duplicates=duplicates) as harness:
        result = burst(harness, RUNS, PIPELINES, settle_seconds=300)
        counts = count_messages(harness, result.run_ids)
    print(f"\n{duplicates}x delivery:\n" + "\n".join(counts.lines()))
    figures = result.figures
    assert len(result.run_ids) == RUNS
    assert figures.lost == [] and figures.runs_completed == RUNS
    assert {figures.snapshots[r] for r in result.run_ids} == {1}
    assert {figures.jobs[r] for r in result.run_ids} == {1}
    assert {figures.posts[r] for r in result.run_ids} == {1}
    assert counts.total / RUNS <= per_run, counts.per_run
