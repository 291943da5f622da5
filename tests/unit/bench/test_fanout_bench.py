"""bench/fanout.py's pure parts: the N-pipeline registry with one group per N, and the curve."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from mlrelay.registry import parse_registry
from mlrelay.schedules.members import members_of
from tests.helpers import PENGUINS_TEMPLATE, REPO


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_fanout", REPO / "bench" / "fanout.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_fanout"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_the_embedded_registry_has_one_group_of_n_pipelines_per_size(tmp_path: Path) -> None:
    fanout = load_bench()
    text = fanout.embedded_registry_yaml(50, PENGUINS_TEMPLATE, (1, 10, 50))
    registry = parse_registry(text, "registry.yaml", tmp_path)
    assert len(registry.pipelines) == 50
    for size in (1, 10, 50):
        group = registry.groups[f"fanout{size}"]
        members = members_of(registry, f"fanout{size}", group.schedules[0])
        assert [m.pipeline for m in members] == [f"fanout-{i}" for i in range(size)]
        assert {m.parameters["seed"] for m in members} == {size}  # the groups' run ids differ


def test_the_curve_is_each_size_against_one_pipeline() -> None:
    fanout = load_bench()
    timings = [
        fanout.Timing(1, submitted=[1.0], final=[2.0]),
        fanout.Timing(50, submitted=[1.0, 4.0, 3.0], final=[5.0, 12.0]),
    ]
    assert fanout.ratio(timings) == 6.0
    lines = fanout.curve(timings)
    assert lines[2].split() == ["50", "4.00", "4.0", "12.00", "6.0"]


def test_most_at_once_counts_the_spans_open_together() -> None:
    fanout = load_bench()
    assert fanout.most_at_once([]) == 0
    assert fanout.most_at_once([(0.0, 1.0), (1.0, 2.0), (2.0, 3.0)]) == 1  # one after another
    assert fanout.most_at_once([(0.0, 3.0), (0.5, 1.0), (0.8, 2.0), (2.5, 4.0)]) == 3


def test_a_proxys_load_is_measured_from_the_tick() -> None:
    fanout = load_bench()
    entry = fanout.importlib.import_module("tests.fakes.fault_proxy").JournalEntry
    entries = [
        entry("POST", "/", 204, 2.0, 10, at=100.5),
        entry("POST", "/", 204, 1.0, 10, at=101.0, waited=0.5),
        entry("POST", "/", 204, 3.0, 10, at=102.5, waited=2.0),
    ]
    load = fanout.peer_load("mlrelay-snapshotter", entries, 100.0)
    assert (load.requests, load.most_at_once, load.median_seconds) == (3, 2, 2.0)
    assert load.median_upstream == 1.0  # 2.0, 0.5 and 1.0 s once the queueing is taken off
    assert (load.first, load.last, load.queued, load.busy) == (0.5, 5.5, 2.5, 3.5)
    row = fanout.load_table([load])[1].split()
    assert row == ["mlrelay-snapshotter", "3", "2", "2.00", "1.00", "0.50", "5.50", "2.5", "3.5"]
