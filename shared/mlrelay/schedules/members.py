"""Who runs on a tick: a pipeline, each member of its schedule's fan-out, or each member of a
group; and every schedule the registry declares, with its owner."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from mlrelay.contracts import Scalar
from mlrelay.errors import PermanentError
from mlrelay.registry import Registry, ScheduleSpec


@dataclass(frozen=True)
class Member:
    pipeline: str
    label: str  # what the member is called in events and logs
    parameters: dict[str, Scalar] = field(default_factory=dict)  # overrides of the defaults


@dataclass(frozen=True)
class OwnedSchedule:
    owner: str  # a pipeline or a group
    kind: Literal["pipeline", "group"]
    schedule: ScheduleSpec


def all_schedules(registry: Registry) -> list[OwnedSchedule]:
    owned = [
        OwnedSchedule(name, "pipeline", schedule)
        for name, spec in sorted(registry.pipelines.items())
        for schedule in spec.schedules
    ]
    owned += [
        OwnedSchedule(name, "group", schedule)
        for name, group in sorted(registry.groups.items())
        for schedule in group.schedules
    ]
    return owned


def schedules_of(registry: Registry, owner: str) -> list[ScheduleSpec]:
    if owner in registry.groups:
        return list(registry.groups[owner].schedules)
    return list(registry.pipeline(owner).schedules)


def schedule_named(registry: Registry, owner: str, name: str) -> ScheduleSpec:
    schedules = schedules_of(registry, owner)
    for schedule in schedules:
        if schedule.name == name:
            return schedule
    known = ", ".join(s.name for s in schedules) or "none"
    raise PermanentError(
        "schedule.name",
        f"{owner!r} has no schedule {name!r} in the registry (it has: {known})",
        "run `mlrelay schedules apply` so Cloud Scheduler matches the registry",
    )


def members_of(registry: Registry, owner: str, schedule: ScheduleSpec | None) -> list[Member]:
    """One member per run a tick makes; a pipeline without fan-out is its own single member."""
    if owner in registry.groups:
        members = registry.groups[owner].members
        counts: dict[str, int] = {}
        for member in members:
            counts[member.pipeline] = counts.get(member.pipeline, 0) + 1
        labels, seen = [], dict.fromkeys(counts, 0)
        for member in members:
            seen[member.pipeline] += 1
            suffix = f"-{seen[member.pipeline]}" if counts[member.pipeline] > 1 else ""
            labels.append(member.pipeline + suffix)
        return [
            Member(m.pipeline, label, dict(m.parameters))
            for m, label in zip(members, labels, strict=True)
        ]
    registry.pipeline(owner)  # an unknown name is refused with the known ones listed
    if schedule is not None and schedule.fan_out:
        return [Member(owner, name, dict(params)) for name, params in schedule.fan_out.items()]
    return [Member(owner, owner)]
