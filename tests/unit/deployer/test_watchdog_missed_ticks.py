"""Missed ticks, fast tier: a paused schedule never alerts, and a pass reads only the slots after
its checkpoint (the DST properties over a year of slots are in
tests/integration/deployer/test_watchdog_slots.py: slow, no peers)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from mlrelay.adapters.local_folder import LocalFolderStore
from mlrelay.config.settings import Settings
from mlrelay.registry import ScheduleSpec
from mlrelay_deployer.watchdog.sweep import run_pass
from tests.helpers import REGISTRY, RecordingPublisher
from tests.watchdog_kit import (
    Clock,
    accept_all,
    deps_for,
    pipeline_spec,
    registry_of,
    ticks,
    watchdog_ports,
)


def test_a_paused_schedule_never_alerts_and_resuming_it_does_not_report_the_pause(
    tmp_path: Path,
) -> None:
    paused = ScheduleSpec(cron="0 6 * * *", time_zone="Europe/Amsterdam", paused=True)
    store = LocalFolderStore(tmp_path / "bucket")
    settings_ = Settings(home=tmp_path, registry_path=REGISTRY)
    publisher = RecordingPublisher()
    clock = Clock(datetime(2026, 3, 1, tzinfo=UTC))
    ports = watchdog_ports(
        settings_, store, registry_of({"penguins": pipeline_spec(schedules=(paused,))}), publisher
    )
    for _ in range(6):  # three days, no tick ever accepted
        clock.advance(hours=12)
        run_pass(deps_for(ports, clock))
    assert publisher.types() == []
    resumed = paused.model_copy(update={"paused": False})
    ports = watchdog_ports(
        settings_, store, registry_of({"penguins": pipeline_spec(schedules=(resumed,))}), publisher
    )
    clock.advance(days=1)  # the first slot after resuming is missed too
    run_pass(deps_for(ports, clock))
    missed = publisher.events()
    assert [e.details["slot"] for e in missed] == ["2026-03-04T05:00:00+00:00"]


def test_a_pass_reads_only_the_slots_after_its_checkpoint(tmp_path: Path) -> None:
    schedule = ScheduleSpec(cron="0 * * * *", time_zone="UTC", grace="5m")
    registry = registry_of({"penguins": pipeline_spec(schedules=(schedule,))})
    store = LocalFolderStore(tmp_path / "bucket")
    ports = watchdog_ports(Settings(home=tmp_path, registry_path=REGISTRY), store, registry)
    clock = Clock(datetime(2026, 6, 1, 12, 10, tzinfo=UTC))
    accept_all(
        store,
        registry,
        schedule,
        ticks(schedule, clock() - timedelta(days=3), clock() + timedelta(days=1)),
        timedelta(0),
    )
    first = run_pass(deps_for(ports, clock))
    # the first pass to see the schedule starts watching it: the 48 h before are not reported
    assert (first.slots_checked, first.findings) == (0, [])
    clock.advance(minutes=5)
    assert run_pass(deps_for(ports, clock)).slots_checked == 0
    clock.advance(hours=1)
    assert run_pass(deps_for(ports, clock)).slots_checked == 1


def test_a_new_schedule_is_watched_from_its_first_pass_not_for_the_days_before(
    tmp_path: Path,
) -> None:
    # a first deployment (or a schedule just added) has no run for any earlier slot: reporting
    # the 48 h lookback would be one false alarm per slot; the slots after the first pass count
    schedule = ScheduleSpec(cron="0 * * * *", time_zone="Europe/Amsterdam", grace="5m")
    store = LocalFolderStore(tmp_path / "bucket")
    publisher = RecordingPublisher()
    ports = watchdog_ports(
        Settings(home=tmp_path, registry_path=REGISTRY),
        store,
        registry_of({"penguins": pipeline_spec(schedules=(schedule,))}),
        publisher,
    )
    clock = Clock(datetime(2026, 6, 1, 12, 10, tzinfo=UTC))
    run_pass(deps_for(ports, clock))
    assert publisher.types() == []
    clock.advance(hours=2)  # two slots came and no tick was accepted for either
    run_pass(deps_for(ports, clock))
    slots = [e.details["slot"] for e in publisher.events()]
    assert slots == ["2026-06-01T13:00:00+00:00", "2026-06-01T14:00:00+00:00"]
