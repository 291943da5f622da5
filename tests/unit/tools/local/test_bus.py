"""The local bus delivers on a worker pool: different runs overlap, one run's messages stay in
order (also across a retry), and the at-least-once contract is unchanged."""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path

from cloudevents.http import CloudEvent

from mlrelay.adapters.local_folder import LocalFolderStore
from mlrelay.config.functions import AttributeFilter
from mlrelay_tools.local.bus import LocalBus


class Recorder:
    def __init__(self, seconds: float = 0.0, fail_first: set[str] | None = None) -> None:
        self.seconds = seconds
        self.fail_first = set(fail_first or ())
        self.spans: list[tuple[str, float, float]] = []
        self.lock = threading.Lock()

    def __call__(self, event: CloudEvent) -> None:
        body = event.data["message"]
        name = body["attributes"]["name"]
        started = time.monotonic()
        with self.lock:
            if name in self.fail_first:
                self.fail_first.discard(name)
                raise RuntimeError(f"{name} fails once")
        time.sleep(self.seconds)
        with self.lock:
            self.spans.append((name, started, time.monotonic()))


def bus(tmp_path: Path, workers: int) -> LocalBus:
    return LocalBus(
        "p", LocalFolderStore(tmp_path), workers=workers, min_backoff=0.05, max_backoff=0.1
    )


def test_messages_of_different_runs_are_delivered_at_the_same_time(tmp_path: Path) -> None:
    local = bus(tmp_path, workers=3)
    recorder = Recorder(seconds=0.4)
    local.subscribe("t", "s", recorder)
    for i in range(3):
        local.publish("t", b"{}", {"run_id": f"run-{i}", "name": f"m{i}"})
    began = time.monotonic()
    stats = local.run_until_idle()
    assert time.monotonic() - began < 1.0  # not 3 x 0.4 s one after the other
    assert stats.most_concurrent == 3 and stats.deliveries == 3
    assert max(s for _, s, _ in recorder.spans) < min(e for _, _, e in recorder.spans)


def test_messages_of_one_run_arrive_one_at_a_time_in_order_even_across_a_retry(
    tmp_path: Path,
) -> None:
    local = bus(tmp_path, workers=4)
    recorder = Recorder(seconds=0.05, fail_first={"a2"})
    local.subscribe("t", "s", recorder)
    for i in range(1, 5):
        local.publish("t", b"{}", {"run_id": "run-a", "name": f"a{i}"})
    local.publish("t", b"{}", {"run_id": "run-b", "name": "b1"})
    stats = local.run_until_idle()
    run_a = [span for span in recorder.spans if span[0].startswith("a")]
    assert [name for name, _, _ in run_a] == ["a1", "a2", "a3", "a4"]  # a3 waited for a2's retry
    assert all(prev[2] <= nxt[1] for prev, nxt in itertools.pairwise(run_a))
    assert stats.failed_deliveries == 1 and stats.dead_lettered == 0
    b_start = next(s for name, s, _ in recorder.spans if name == "b1")
    assert b_start < run_a[-1][2]  # the other run did not wait for run-a


def test_with_one_worker_the_bus_delivers_one_message_at_a_time(tmp_path: Path) -> None:
    local = bus(tmp_path, workers=1)
    recorder = Recorder(seconds=0.05)
    local.subscribe("t", "s", recorder)
    for i in range(4):
        local.publish("t", b"{}", {"run_id": f"run-{i}", "name": f"m{i}"})
    assert local.run_until_idle().most_concurrent == 1
    spans = sorted(recorder.spans, key=lambda s: s[1])
    assert all(prev[2] <= nxt[1] for prev, nxt in itertools.pairwise(spans))


def test_a_filtered_subscription_gets_only_the_messages_its_filter_matches(tmp_path: Path) -> None:
    local = bus(tmp_path, workers=1)
    everything, cancels = Recorder(), Recorder()
    local.subscribe("commands", "all", everything)
    only_cancel = AttributeFilter("action", ("cancel",))
    local.subscribe("commands", "cancel", cancels, accepts=only_cancel.matches)
    for name, action in (("a", "retry"), ("b", "cancel"), ("c", "approve")):
        local.publish("commands", b"{}", {"name": name, "action": action})
    local.run_until_idle()
    assert sorted(s[0] for s in everything.spans) == ["a", "b", "c"]
    assert [s[0] for s in cancels.spans] == ["b"]
