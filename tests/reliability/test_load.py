"""A burst of run requests across ten pipelines through the cloud-shaped harness, every message
delivered three times, transient faults on every peer: every run completes, with one snapshot,
one pipeline job and one Slack message each. (bench/reliability.py runs the 200-run version.)"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.reliability.harness.cloud import Harness, cloud_harness
from tests.reliability.harness.load import burst

RUNS = int(os.environ.get("MLRELAY_LOAD_RUNS", "20"))
PIPELINES = 10


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    with cloud_harness(tmp_path_factory.mktemp("load"), pipelines=PIPELINES, duplicates=3) as h:
        yield h


def test_a_burst_of_runs_delivered_three_times_completes_each_run_exactly_once(
    harness: Harness,
) -> None:
    result = burst(harness, RUNS, PIPELINES, settle_seconds=400)
    figures = result.figures
    print("\n".join(figures.lines(result.run_ids)))
    assert len(result.run_ids) == RUNS
    assert figures.lost == [] and figures.runs_completed == RUNS
    assert {figures.snapshots[r] for r in result.run_ids} == {1}
    assert {figures.jobs[r] for r in result.run_ids} == {1}
    assert {figures.posts[r] for r in result.run_ids} == {1}
    assert figures.deliveries > 3 * RUNS * 4  # three deliveries of each of >= 4 messages a run
    assert figures.dead_lettered == 0
