"""Scheduled runs end to end on the embedded runtime: tick dedup, fan-out that runs in parallel,
backfill and the local cron, with a tiny KFP pipeline compiled here and run by kfp.local."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from cloudevents.http import CloudEvent

from mlrelay.config.settings import Settings
from mlrelay.ports.container import use_ports
from mlrelay.registry import load_registry
from mlrelay.schedules.members import schedule_named
from mlrelay.stage.envelope import PubsubMessage
from mlrelay.stage.ledger import list_runs, read_run
from mlrelay_tools.cli.main import cli
from mlrelay_tools.local.runtime import LocalRuntime
from mlrelay_tools.schedules.jobs import tick_request
from mlrelay_tools.schedules.local_cron import run_cron
from tests.helpers import Capture, RecordingChat, make_runtime

TINY_PIPELINE = """
from kfp import compiler, dsl

@dsl.component(base_image="python:3.11-slim")
def echo(tenant: str, snapshot_fingerprint: str) -> str:
    return tenant + ":" + snapshot_fingerprint[:8]

@dsl.pipeline(name="tiny")
def tiny(tenant: str = "none", snapshot_fingerprint: str = "") -> str:
    return echo(tenant=tenant, snapshot_fingerprint=snapshot_fingerprint).output

compiler.Compiler().compile(tiny, TARGET)
"""

REGISTRY = """\
version: 1
pipelines:
  tiny:
    source: {table: penguins}
    template: tiny.yaml
    parameters: {tenant: none}
    overridable: [tenant]
    schedules:
      - name: hourly
        cron: "0 * * * *"
        time_zone: Europe/Amsterdam
      - name: dst
        cron: "30 2 * * *"
        time_zone: Europe/Amsterdam
      - name: tenants
        cron: "30 6 * * *"
        time_zone: America/New_York
        fan_out:
          acme: {tenant: acme}
          globex: {tenant: globex}
groups:
  five:
    members:
      - {pipeline: tiny, parameters: {tenant: t1}}
      - {pipeline: tiny, parameters: {tenant: t2}}
      - {pipeline: tiny, parameters: {tenant: t3}}
      - {pipeline: tiny, parameters: {tenant: t4}}
      - {pipeline: tiny, parameters: {tenant: t5}}
    schedules:
      - name: nightly
        cron: "0 2 * * *"
        time_zone: Europe/Amsterdam
"""


@pytest.fixture(scope="session")
def tiny_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Compiled with the kfp this project pins (kfp reads a component's source from its file)."""
    folder = tmp_path_factory.mktemp("tiny")
    source = folder / "tiny_pipeline.py"
    source.write_text(TINY_PIPELINE.replace("TARGET", repr(str(folder / "tiny.yaml"))))
    subprocess.run([sys.executable, str(source)], check=True, timeout=120)
    return folder / "tiny.yaml"


@pytest.fixture
def registry_path(tmp_path: Path, tiny_template: Path) -> Path:
    (tmp_path / "tiny.yaml").write_bytes(tiny_template.read_bytes())
    path = tmp_path / "registry.yaml"
    path.write_text(REGISTRY)
    return path


@pytest.fixture
def schedule_settings(settings: Settings, registry_path: Path) -> Settings:
    return replace(settings, registry_path=registry_path, bus_workers=5)


class Timings:
    """Start and end (monotonic seconds) of each deploy delivery, by run id."""

    def __init__(self) -> None:
        self.spans: dict[str, tuple[float, float]] = {}
        self.lock = threading.Lock()

    def wrap(self, handler: Callable[[CloudEvent], None]) -> Callable[[CloudEvent], None]:
        def timed(event: CloudEvent) -> None:
            started = time.monotonic()
            try:
                handler(event)
            finally:
                run_id = event.data["message"]["attributes"]["run_id"]
                with self.lock:
                    self.spans[run_id] = (started, time.monotonic())

        return timed

    def most_at_once(self) -> int:
        edges = sorted(
            [(start, 1) for start, _ in self.spans.values()]
            + [(end, -1) for _, end in self.spans.values()]
        )
        running = best = 0
        for _, step in edges:
            running += step
            best = max(best, running)
        return best


@pytest.fixture
def scheduled(
    schedule_settings: Settings, channel: RecordingChat
) -> Iterator[tuple[LocalRuntime, Capture, Timings]]:
    timings = Timings()
    runtime = make_runtime(schedule_settings, channel, wrap={"mlrelay-deployer": timings.wrap})
    capture = Capture(schedule_settings.topics.lifecycle)
    runtime.bus.listen(capture)
    yield runtime, capture, timings
    use_ports(None)


def tick_message(
    owner: str, schedule: str, registry: Path, published: datetime, mid: str
) -> PubsubMessage:
    spec = schedule_named(load_registry(registry), owner, schedule)
    request = tick_request(owner, spec)  # the body the Cloud Scheduler job carries
    return PubsubMessage(
        data=request.to_json(),
        attributes=request.attributes(),
        message_id=mid,
        publish_time=published,
    )


def accepted(capture: Capture) -> list[Any]:
    return [e for e in capture.events if e.event_type == "trigger.accepted"]


def deploy_results(runtime: LocalRuntime, run_id: str) -> dict[str, Any]:
    record = read_run(runtime.store, run_id)["pipeline"]
    assert record.state == "done", record
    return record.result or {}


@pytest.mark.pipeline
def test_a_tick_delivered_three_times_and_retried_by_the_scheduler_makes_one_run(
    scheduled: tuple[LocalRuntime, Capture, Timings], registry_path: Path
) -> None:
    runtime, capture, _ = scheduled
    slot = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)  # 16:00 in Amsterdam
    runs = runtime.settings.topics.runs
    tick = tick_message("tiny", "hourly", registry_path, slot + timedelta(seconds=2), "m-1")
    for _ in range(3):  # Pub/Sub's at-least-once: the same message three times
        runtime.bus.inject(runs, tick)
    # Cloud Scheduler retrying the publish: new messages, later publish times, same slot
    for delay, mid in ((timedelta(seconds=40), "m-2"), (timedelta(minutes=25), "m-3")):
        runtime.bus.inject(runs, replace(tick, message_id=mid, publish_time=slot + delay))
    stats = runtime.bus.run_until_idle()
    assert stats.dead_lettered == 0
    [run_id] = list_runs(runtime.store)
    assert {e.run_id for e in accepted(capture)} == {run_id}
    # accepted once; the scheduler's two retries are new messages, each answered in full; the
    # duplicates of m-1 only while the first delivery's messages are not yet out (its marker)
    assert sum(not e.details["reused"] for e in accepted(capture)) == 1
    assert 3 <= len(accepted(capture)) <= 5
    assert run_id.startswith("tiny-20261125t150000z-")
    trigger = read_run(runtime.store, run_id)["trigger"].result or {}
    assert trigger["logical_time"] == "2026-11-25T15:00:00+00:00"
    assert trigger["trigger"] == "schedule" and trigger["schedule"] == "hourly"
    assert deploy_results(runtime, run_id)["status"] == "succeeded"
    assert len(list((runtime.settings.home / "pipeline-runs").iterdir())) == 1


@pytest.mark.pipeline
def test_a_group_tick_of_five_members_makes_five_runs_that_overlap_in_time(
    scheduled: tuple[LocalRuntime, Capture, Timings], registry_path: Path
) -> None:
    runtime, capture, timings = scheduled
    slot = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)  # 02:00 in Amsterdam
    tick = tick_message("five", "nightly", registry_path, slot + timedelta(seconds=1), "g-1")
    runtime.bus.inject(runtime.settings.topics.runs, tick)
    stats = runtime.bus.run_until_idle()
    assert stats.dead_lettered == 0
    run_ids = list_runs(runtime.store)
    assert len(run_ids) == 5
    tenants = {e.parameters["tenant"] for e in accepted(capture)}
    assert tenants == {"t1", "t2", "t3", "t4", "t5"}
    for run_id in run_ids:
        result = deploy_results(runtime, run_id)
        assert result["status"] == "succeeded"
        assert result["outputs"]["Output"].startswith(result["arguments"]["tenant"] + ":")
    assert set(timings.spans) == set(run_ids)
    starts = [start for start, _ in timings.spans.values()]
    ends = [end for _, end in timings.spans.values()]
    assert max(starts) < min(ends), timings.spans  # all five pipelines were running at once
    assert timings.most_at_once() == 5


def ack_without_work(handler: Callable[[CloudEvent], None]) -> Callable[[CloudEvent], None]:
    return lambda event: None


def test_a_fanned_out_schedule_gives_each_member_its_parameters_and_its_own_run(
    schedule_settings: Settings, channel: RecordingChat, registry_path: Path
) -> None:
    runtime = make_runtime(
        schedule_settings, channel, wrap={"mlrelay-snapshotter": ack_without_work}
    )
    capture = Capture(schedule_settings.topics.lifecycle)
    runtime.bus.listen(capture)
    try:
        slot = datetime(2026, 3, 9, 10, 30, tzinfo=UTC)  # 06:30 EDT, the day after the change
        tick = tick_message("tiny", "tenants", registry_path, slot, "f-1")
        runtime.bus.inject(schedule_settings.topics.runs, tick)
        runtime.bus.inject(schedule_settings.topics.runs, replace(tick, message_id="f-2"))
        runtime.bus.run_until_idle()
    finally:
        use_ports(None)
    by_member = {e.details["member"]: e for e in accepted(capture) if not e.details["reused"]}
    assert sorted(by_member) == ["acme", "globex"]
    assert by_member["acme"].parameters == {"tenant": "acme"}
    assert by_member["acme"].run_id != by_member["globex"].run_id
    assert all(e.details["logical_time"] == slot.isoformat() for e in by_member.values())
    assert len(list_runs(runtime.store)) == 2


@pytest.mark.parametrize(
    ("published", "slot"),
    [
        ("2026-03-29T01:00:04Z", "2026-03-29T01:00:00+00:00"),  # 02:30 skipped: end of the gap
        ("2026-03-29T00:59:57Z", "2026-03-29T01:00:00+00:00"),  # a few seconds early
        ("2026-10-25T00:30:01Z", "2026-10-25T00:30:00+00:00"),  # 02:30 CEST, first of two
        ("2026-10-25T01:30:01Z", "2026-10-25T00:30:00+00:00"),  # 02:30 CET: the same day's slot
        ("2026-10-26T01:30:02Z", "2026-10-26T01:30:00+00:00"),  # the next day, now CET
    ],
)
def test_the_trigger_takes_the_slot_from_the_ticks_publish_time_across_dst(
    schedule_settings: Settings,
    channel: RecordingChat,
    registry_path: Path,
    published: str,
    slot: str,
) -> None:
    runtime = make_runtime(
        schedule_settings, channel, wrap={"mlrelay-snapshotter": ack_without_work}
    )
    capture = Capture(schedule_settings.topics.lifecycle)
    runtime.bus.listen(capture)
    try:
        moment = datetime.fromisoformat(published.replace("Z", "+00:00"))
        tick = tick_message("tiny", "dst", registry_path, moment, "d-1")
        runtime.bus.inject(schedule_settings.topics.runs, tick)
        runtime.bus.run_until_idle()
    finally:
        use_ports(None)
    [event] = accepted(capture)
    assert event.details["logical_time"] == slot


def test_a_tick_for_a_schedule_the_registry_no_longer_has_is_rejected_with_the_fix(
    schedule_settings: Settings, channel: RecordingChat, registry_path: Path
) -> None:
    runtime = make_runtime(schedule_settings, channel)
    capture = Capture(schedule_settings.topics.lifecycle)
    runtime.bus.listen(capture)
    try:
        tick = tick_message("tiny", "hourly", registry_path, datetime.now(UTC), "x-1")
        body = json.loads(tick.data)
        body["schedule"]["name"] = "weekly"
        runtime.bus.inject(
            schedule_settings.topics.runs, replace(tick, data=json.dumps(body).encode())
        )
        runtime.bus.run_until_idle()
    finally:
        use_ports(None)
    [event] = capture.events
    assert event.event_type == "trigger.rejected"
    assert "has no schedule 'weekly'" in (event.error or "")
    assert "mlrelay schedules apply" in (event.error or "")
    assert list_runs(runtime.store) == []


def backfill(settings: Settings, *args: str) -> str:
    env = {
        "MLRELAY_HOME": str(settings.home),
        "MLRELAY_REGISTRY": str(settings.registry_path),
        "MLRELAY_MODE": "embedded",
    }
    try:
        result = CliRunner().invoke(cli, ["backfill", *args], env=env, catch_exceptions=False)
    finally:
        use_ports(None)
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.pipeline
def test_a_backfill_over_ten_slots_run_twice_makes_ten_runs_within_its_concurrency(
    schedule_settings: Settings, channel: RecordingChat, registry_path: Path
) -> None:
    window = ["tiny", "--schedule", "hourly", "--from", "2026-11-20T08:00:00+0000"]
    window += ["--to", "2026-11-20T17:00:00+0000", "--concurrency", "3"]
    first = backfill(schedule_settings, *window)
    assert "10 slot(s), 10 run(s) for tiny" in first
    assert "runs: 10 done" in first
    most = int(first.split("at most ")[1].split()[0])
    assert 1 < most <= 3
    run_ids = list_runs(LocalRuntimeStore(schedule_settings))
    assert len(run_ids) == 10
    times = sorted(
        (read_run(LocalRuntimeStore(schedule_settings), r)["trigger"].result or {})["logical_time"]
        for r in run_ids
    )
    assert times[0] == "2026-11-20T08:00:00+00:00" and times[-1] == "2026-11-20T17:00:00+00:00"
    pipeline_runs = schedule_settings.home / "pipeline-runs"
    before = {p.name: p.stat().st_mtime_ns for p in pipeline_runs.iterdir()}
    assert len(before) == 10

    second = backfill(schedule_settings, *window)
    assert "runs: 10 done" in second
    assert list_runs(LocalRuntimeStore(schedule_settings)) == run_ids  # nothing new
    assert {p.name: p.stat().st_mtime_ns for p in pipeline_runs.iterdir()} == before

    # the scheduler's own tick for one of those slots is the same run
    runtime = make_runtime(schedule_settings, channel)
    capture = Capture(schedule_settings.topics.lifecycle)
    runtime.bus.listen(capture)
    try:
        slot = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
        tick = tick_message("tiny", "hourly", registry_path, slot + timedelta(seconds=3), "b-1")
        runtime.bus.inject(schedule_settings.topics.runs, tick)
        runtime.bus.run_until_idle()
    finally:
        use_ports(None)
    [event] = accepted(capture)
    assert event.run_id in run_ids and event.details["reused"] is True


def LocalRuntimeStore(settings: Settings) -> Any:
    from mlrelay.adapters.local_folder import LocalFolderStore

    return LocalFolderStore(settings.bucket_dir)


def test_the_local_cron_publishes_each_slot_once_and_each_becomes_its_run(
    schedule_settings: Settings, channel: RecordingChat
) -> None:
    registry = load_registry(schedule_settings.registry_path)
    runtime = make_runtime(
        schedule_settings, channel, wrap={"mlrelay-snapshotter": ack_without_work}
    )
    clock = [datetime(2026, 11, 25, 10, 59, 30, tzinfo=UTC)]
    naps: list[float] = []

    def sleep(seconds: float) -> None:
        naps.append(seconds)
        clock[0] += timedelta(seconds=seconds)

    try:
        ticks = run_cron(
            registry,
            runtime.bus,
            schedule_settings.topics.runs,
            deliver=lambda: runtime.bus.run_until_idle() and None,
            sleep=sleep,
            now=lambda: clock[0],
            stop=lambda: clock[0] > datetime(2026, 11, 25, 13, 0, tzinfo=UTC),
        )
    finally:
        use_ports(None)
    # hourly at 11:00, 12:00, 13:00 UTC; `tenants` at 06:30 New York = 11:30 UTC, two members
    assert ticks == 4
    runs = [read_run(runtime.store, r)["trigger"].result or {} for r in list_runs(runtime.store)]
    assert sorted((r["logical_time"][11:16], r["member"]) for r in runs) == [
        ("11:00", "tiny"),
        ("11:30", "acme"),
        ("11:30", "globex"),
        ("12:00", "tiny"),
        ("13:00", "tiny"),
    ]
    assert max(naps) <= 30.0
