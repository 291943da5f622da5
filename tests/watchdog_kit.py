"""Helpers for the watchdog's tests and bench: an injected clock, a registry with the watch,
deadline and schedule settings under test, the ports a pass uses, and runs accepted the way the
trigger accepts them (its own tick -> slot -> run id derivation)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from mlrelay.config.settings import Settings
from mlrelay.contracts import RunRequest, ScheduleRef
from mlrelay.ports.container import Ports
from mlrelay.ports.protocols import JobState, ObjectStore
from mlrelay.registry import (
    DeadlineSpec,
    PipelineSpec,
    Registry,
    ScheduleSpec,
    WatchSpec,
    load_registry,
    resolve_parameters,
)
from mlrelay.schedules.slots import CronSchedule
from mlrelay.stage import keys
from mlrelay.stage.envelope import PubsubMessage
from mlrelay.stage.open_runs import OpenRun, mark_open
from mlrelay.stage.records import StageRecord
from mlrelay.stage.run_identity import derive_run_id
from mlrelay_deployer.watchdog.dependencies import AskBackend, WatchdogDeps
from mlrelay_deployer.watchdog.sweep import run_pass
from mlrelay_trigger.accept import tick_slot
from tests.helpers import REGISTRY, RecordingPublisher


@dataclass
class Clock:
    moment: datetime

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, **delta: float) -> datetime:
        self.moment += timedelta(**delta)
        return self.moment


def pipeline_spec(
    *,
    watch: WatchSpec | None = None,
    deadline: str | None = None,
    schedules: tuple[ScheduleSpec, ...] = (),
) -> PipelineSpec:
    spec = load_registry(REGISTRY).pipelines["penguins"]
    return spec.model_copy(
        update={
            "watch": watch or WatchSpec(),
            "deadline": DeadlineSpec(finish_within=deadline) if deadline else None,
            "schedules": list(schedules),
        }
    )


def registry_of(pipelines: dict[str, PipelineSpec]) -> Registry:
    return load_registry(REGISTRY).model_copy(update={"pipelines": pipelines, "groups": {}})


def watchdog_ports(
    settings: Settings, store: ObjectStore, registry: Registry, publisher: Any = None
) -> Ports:
    return Ports(
        settings, publisher=publisher or RecordingPublisher(), store=store, registry=registry
    )


@dataclass
class Backend:
    """What the pipeline service says of each run's job (the `ask_backend` step)."""

    states: dict[str, JobState] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)

    def __call__(self, run_id: str, records: dict[str, StageRecord]) -> JobState | None:
        self.asked.append(run_id)
        return self.states.get(run_id)


@dataclass
class Reported:
    """The `report` step: the terminal states the pass handed over, once each."""

    calls: list[tuple[str, str, str]] = field(default_factory=list)

    def __call__(self, run_id: str, pipeline: str, state: JobState) -> bool:
        first = all(c[0] != run_id for c in self.calls)
        self.calls.append((run_id, pipeline, state.status))
        return first


def deps_for(ports: Ports, clock: Clock, ask: AskBackend | None = None) -> WatchdogDeps:
    return WatchdogDeps(ports=ports, ask_backend=ask, report=Reported(), now=clock)


def tick_run_id(
    registry: Registry, pipeline: str, schedule: ScheduleSpec, publish: datetime
) -> str:
    """The run id the trigger gives the tick Cloud Scheduler publishes at `publish`."""
    request = RunRequest(
        pipeline=pipeline,
        trigger="schedule",
        schedule=ScheduleRef(name=schedule.name, cron=schedule.cron, time_zone=schedule.time_zone),
    )
    slot = tick_slot(request, PubsubMessage(data=b"{}", publish_time=publish))
    assert slot is not None
    parameters = resolve_parameters(registry.pipeline(pipeline), {})
    return derive_run_id(pipeline, parameters, logical_time=slot)


def record(store: ObjectStore, run_id: str, stage: str, rec: StageRecord) -> None:
    store.write(keys.ledger(run_id, stage), rec.to_json())  # type: ignore[arg-type]


def accepted(
    store: ObjectStore,
    run_id: str,
    *,
    slot: datetime,
    at: datetime,
    pipeline: str = "penguins",
    schedule: str | None = None,
) -> None:
    """The trigger's record and index entry of an accepted run (what `accept_member` writes)."""
    result = {
        "run_id": run_id,
        "pipeline": pipeline,
        "parameters": {},
        "logical_time": slot.isoformat(),
        "trigger": "schedule" if schedule else "manual",
        "requested_by": "test",
        "accepted_at": at.isoformat(),
        "schedule": schedule,
    }
    done = StageRecord("trigger", "done", at.isoformat(), None, at.isoformat(), result)
    record(store, run_id, "trigger", done)
    mark_open(
        store,
        OpenRun(run_id, pipeline, slot.isoformat(), at.isoformat(), result["trigger"], schedule),
    )


def snapshotted(store: ObjectStore, run_id: str, at: datetime) -> None:
    result = {
        "manifest_uri": f"gs://b/snapshots/penguins/{run_id}/manifest.json",
        "row_count": 1,
        "total_bytes": 1,
        "file_count": 1,
    }
    record(
        store,
        run_id,
        "snapshot",
        StageRecord("snapshot", "done", at.isoformat(), None, at.isoformat(), result),
    )


def submitted(store: ObjectStore, run_id: str, at: datetime) -> None:
    result = {"status": "submitted", "job_name": f"projects/p/locations/r/pipelineJobs/{run_id}"}
    record(
        store,
        run_id,
        "pipeline",
        StageRecord("pipeline", "done", at.isoformat(), None, at.isoformat(), result),
    )


def checkpoint(store: ObjectStore, owner: str, schedule: str) -> datetime | None:
    raw = store.read(keys.schedule_checked(owner, schedule))
    return datetime.fromisoformat(json.loads(raw)["checked_until"]) if raw else None


class MemoryStore:
    """The ObjectStore port in memory, with generations (create-only and compare-and-swap as
    GCS does them): for the fast tier's long simulations, where a folder's fsyncs dominate."""

    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, int]] = {}
        self._generation = 0

    def _next(self) -> int:
        self._generation += 1
        return self._generation

    def uri(self, key: str) -> str:
        return f"memory://{key}"

    def read(self, key: str) -> bytes | None:
        found = self.objects.get(key)
        return None if found is None else found[0]

    def read_versioned(self, key: str) -> tuple[bytes, str] | None:
        found = self.objects.get(key)
        return None if found is None else (found[0], str(found[1]))

    def create(self, key: str, data: bytes) -> bool:
        if key in self.objects:
            return False
        self.objects[key] = (data, self._next())
        return True

    def replace(self, key: str, data: bytes, if_generation: str) -> bool:
        found = self.objects.get(key)
        if found is None or str(found[1]) != if_generation:
            return False
        self.objects[key] = (data, self._next())
        return True

    def write(self, key: str, data: bytes) -> None:
        self.objects[key] = (data, self._next())

    def delete(self, key: str) -> None:
        self.objects.pop(key, None)

    def delete_if(self, key: str, if_generation: str) -> bool:
        found = self.objects.get(key)
        if found is None or str(found[1]) != if_generation:
            return False
        del self.objects[key]
        return True

    def list(self, prefix: str) -> list[str]:
        return sorted(k for k in self.objects if k.startswith(prefix))


def ticks(schedule: ScheduleSpec, start: datetime, end: datetime) -> list[datetime]:
    """The schedule's slots in [start, end], by the slot oracle the trigger uses."""
    return CronSchedule(schedule.cron, schedule.time_zone).between(start, end)


def accept_all(
    store: ObjectStore,
    registry: Registry,
    schedule: ScheduleSpec,
    slots: list[datetime],
    delay: timedelta,
) -> dict[datetime, str]:
    """Each slot's tick, published `delay` after its slot, accepted: the trigger's run id."""
    ids = {}
    for slot in slots:
        run_id = tick_run_id(registry, "penguins", schedule, slot + delay)
        store.write(keys.ledger(run_id, "trigger"), b"{}")
        ids[slot] = run_id
    return ids


def pass_through(
    store: ObjectStore, registry: Registry, start: datetime, end: datetime, steps: list[float]
) -> tuple[RecordingPublisher, datetime]:
    """Passes from `start` every `steps` hours (in turn) until `end`; the publisher and the last
    pass's time."""
    from pathlib import Path

    publisher = RecordingPublisher()
    ports = watchdog_ports(
        Settings(home=Path("/nonexistent"), registry_path=REGISTRY), store, registry, publisher
    )
    clock = Clock(start)
    run_pass(deps_for(ports, clock))  # the first pass starts watching the schedule
    i = 0
    while clock() < end:
        clock.advance(hours=steps[i % len(steps)])
        run_pass(deps_for(ports, clock))
        i += 1
    return publisher, clock()
