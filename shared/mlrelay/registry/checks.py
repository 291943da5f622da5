"""Registry checks beyond the schema: references between fields (overridable parameters, SQL
parameters, backend sections, template files), schedule names and fan-out, and groups.

Each check returns (path, problem) pairs; `mlrelay.registry` turns paths into file lines.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from mlrelay.errors import PermanentError
from mlrelay.registry.specs import (
    GroupSpec,
    PipelineSpec,
    ScheduleSpec,
    resolve_parameters,
    template_location,
)

_SQL_PARAM = re.compile(r"@([A-Za-z_][A-Za-z0-9_]*)")


Found = tuple[tuple[str | int, ...], str]


def pipeline_problems(name: str, spec: PipelineSpec, base_dir: Path) -> list[Found]:
    found: list[Found] = []
    at: tuple[str | int, ...] = ("pipelines", name)
    found += schedule_problems(at, spec.schedules, {name: spec})
    for i, param in enumerate(spec.overridable):
        if param not in spec.parameters:
            found.append(
                (
                    (*at, "overridable", i),
                    f"{param!r} has no default in `parameters`; add one so its type is known",
                )
            )
    if spec.source.sql is not None:
        used = set(_SQL_PARAM.findall(spec.source.sql))
        # @snapshot_time is built in: the run's logical time, which the snapshotter binds
        for missing in sorted(used - set(spec.source.query_parameters) - {"snapshot_time"}):
            found.append(
                ((*at, "source", "sql"), f"@{missing} is used but not listed in `query_parameters`")
            )
        for i, param in enumerate(spec.source.query_parameters):
            if param not in spec.parameters:
                found.append(
                    (
                        (*at, "source", "query_parameters", i),
                        f"{param!r} needs a default in `parameters`",
                    )
                )
    if spec.backend in ("vertex", "kfp") and getattr(spec, spec.backend) is None:
        found.append(
            ((*at, "backend"), f"`backend: {spec.backend}` needs a `{spec.backend}:` section")
        )
    location = template_location(spec.template, base_dir)
    if "://" not in location and not Path(location).is_file():
        found.append(
            (
                (*at, "template"),
                f"file {location} does not exist; compile the pipeline or fix the path",
            )
        )
    return found


def schedule_problems(
    at: tuple[str | int, ...], schedules: list[ScheduleSpec], pipelines: dict[str, PipelineSpec]
) -> list[Found]:
    """Unique schedule names; fan-out members may set only overridable, well-typed parameters."""
    found: list[Found] = []
    seen: set[str] = set()
    for i, schedule in enumerate(schedules):
        if schedule.name in seen:
            found.append(
                ((*at, "schedules", i, "name"), f"{schedule.name!r} is used twice; name each")
            )
        seen.add(schedule.name)
        for member, parameters in schedule.fan_out.items():
            for pipeline in pipelines.values():
                try:
                    resolve_parameters(pipeline, parameters)
                except PermanentError as exc:
                    found.append(((*at, "schedules", i, "fan_out", member), str(exc)))
    return found


def group_problems(raw_groups: Any, specs: dict[str, PipelineSpec]) -> list[Found]:
    found: list[Found] = []
    if not isinstance(raw_groups, dict):
        return found
    for name, raw_group in raw_groups.items():
        at: tuple[str | int, ...] = ("groups", name)
        if str(name) in specs:
            found.append((at, f"{name!r} is also a pipeline; give the group another name"))
        try:
            group = GroupSpec.model_validate(raw_group)
        except ValidationError:
            continue  # reported with the registry's own fields
        for i, member in enumerate(group.members):
            spec = specs.get(member.pipeline)
            if spec is None:
                found.append(
                    ((*at, "members", i, "pipeline"), f"{member.pipeline!r} is not a pipeline")
                )
                continue
            try:
                resolve_parameters(spec, member.parameters)
            except PermanentError as exc:
                found.append(((*at, "members", i, "parameters"), str(exc)))
        found += schedule_problems(at, group.schedules, {})
        for i, schedule in enumerate(group.schedules):
            if schedule.fan_out:
                found.append(
                    ((*at, "schedules", i, "fan_out"), "a group fans out over its `members`")
                )
    return found
