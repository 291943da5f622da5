"""Missed ticks, fast tier: a paused schedule never alerts, and a pass reads only the slots after
its checkpoint (the DST properties over a year of slots are in
tests/integration/deployer/test_watchdog_slots.py: slow, no peers)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import strategies as st

from mlrelay.adapters.local_folder import LocalFolderStore
from mlrelay.config.settings import Settings
from mlrelay.registry import ScheduleSpec
from mlrelay.schedules.slots import CronSchedule
from mlrelay.stage import keys
from mlrelay_deployer.watchdog.sweep import run_pass
from tests.helpers import REGISTRY, RecordingPublisher
from tests.watchdog_kit import (
    Clock,
    MemoryStore,
    deps_for,
    pipeline_spec,
    registry_of,
    tick_run_id,
    watchdog_ports,
)

ZONES = [
    "Europe/Amsterdam",
    "America/New_York",
    "Australia/Lord_Howe",
    "America/Santiago",
    "Pacific/Chatham",
    "UTC",
]
YEAR_START = datetime(2026, 1, 1, tzinfo=UTC)
YEAR_END = datetime(2027, 1, 1, tzinfo=UTC)

# daily at a DST-prone hour (fires once at an overlap), hourly (fires at both)
daily = st.builds(
    lambda m, h: f"{m} {h} * * *",
    st.sampled_from([0, 15, 30, 45]),
    st.sampled_from([0, 1, 2, 3, 12, 23]),
)
hourly = st.builds(lambda m: f"{m} * * * *", st.sampled_from([0, 30]))
# three weeks from before the northern and southern transitions (spring and autumn)
TRANSITIONS = [
    datetime(2026, 3, 20, tzinfo=UTC),
    datetime(2026, 3, 27, tzinfo=UTC),
    datetime(2026, 9, 20, tzinfo=UTC),
    datetime(2026, 10, 20, tzinfo=UTC),
]


def _ticks(schedule: ScheduleSpec, start: datetime, end: datetime) -> list[datetime]:
    return CronSchedule(schedule.cron, schedule.time_zone).between(start, end)


def _accept_all(store: MemoryStore, registry, schedule, slots, delay) -> dict[datetime, str]:  # type: ignore[no-untyped-def]
    """Each slot's tick, published `delay` after its slot, accepted: the trigger's run id."""
    ids = {}
    for slot in slots:
        run_id = tick_run_id(registry, "penguins", schedule, slot + delay)
        store.write(keys.ledger(run_id, "trigger"), b"{}")
        ids[slot] = run_id
    return ids


def _pass_through(store, registry, start, end, steps) -> RecordingPublisher:  # type: ignore[no-untyped-def]
    settings_ = Settings(home=Path("/nonexistent"), registry_path=REGISTRY)
    publisher = RecordingPublisher()
    ports = watchdog_ports(settings_, store, registry, publisher)
    clock = Clock(start)
    i = 0
    while clock() < end:
        clock.advance(hours=steps[i % len(steps)])
        run_pass(deps_for(ports, clock))
        i += 1
    return publisher


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
    _accept_all(
        store,
        registry,
        schedule,
        _ticks(schedule, clock() - timedelta(days=3), clock() + timedelta(days=1)),
        timedelta(0),
    )
    first = run_pass(deps_for(ports, clock))
    assert first.slots_checked == 48  # the lookback window, once
    clock.advance(minutes=5)
    assert run_pass(deps_for(ports, clock)).slots_checked == 0
    clock.advance(hours=1)
    assert run_pass(deps_for(ports, clock)).slots_checked == 1
