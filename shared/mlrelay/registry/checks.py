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
from mlrelay.registry.jobs import entry_problems
from mlrelay.registry.specs import (
    GroupSpec,
    PipelineSpec,
    ScheduleSpec,
    SourceSpec,
    resolve_parameters,
    template_location,
)
from mlrelay.sql_parameters import UnclosedSql, is_parameter_name, parameter_names

# @snapshot_time is built in: the run's logical time, which the snapshotter binds
BUILT_IN_PARAMETERS = frozenset({"snapshot_time"})


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
    found += sql_parameter_problems((*at, "source"), spec.source, spec.parameters)
    found += expectation_problems(at, spec)
    if spec.backend in ("vertex", "kfp") and getattr(spec, spec.backend) is None:
        found.append(
            ((*at, "backend"), f"`backend: {spec.backend}` needs a `{spec.backend}:` section")
        )
    if spec.backend == "vertex_custom_job" and spec.vertex is None:
        found.append(
            (
                (*at, "backend"),
                "`backend: vertex_custom_job` needs a `vertex:` section (its project and region)",
            )
        )
    if spec.backend == "vertex_custom_job" and spec.job is not None and not spec.job.image:
        found.append(
            (
                (*at, "job", "image"),
                "Vertex AI runs the job in a container: set `job.image` (an Artifact Registry "
                "image, e.g. europe-docker.pkg.dev/<project>/<repo>/train:1.0)",
            )
        )
    if spec.custom_job is not None and spec.backend != "vertex_custom_job":
        found.append(
            (
                (*at, "custom_job"),
                f"`custom_job:` is for `backend: vertex_custom_job`, not {spec.backend}; "
                "remove it or change the backend",
            )
        )
    found += promotion_problems(at, spec)
    found += job_problems(at, spec)
    if spec.template is None:
        return found
    location = template_location(spec.template, base_dir)
    if "://" not in location and not Path(location).is_file():
        found.append(
            (
                (*at, "template"),
                f"file {location} does not exist; compile the pipeline or fix the path",
            )
        )
    return found


CLOUD_BACKENDS = ("vertex", "vertex_custom_job")
"""The backends whose runs' models are promoted on Vertex AI (the local ones: the embedded
endpoint in embedded mode)."""


def job_problems(at: tuple[str | int, ...], spec: PipelineSpec) -> list[Found]:
    """A `{name}` in the job's entry that no run could fill is found now, not at every run."""
    if spec.job is None:
        return []
    found: list[Found] = []
    for field, message in entry_problems(spec.job, spec.parameters):
        path: list[str | int] = ["job"]
        for piece in re.split(r"[.\[\]]+", field):
            if piece:
                path.append(int(piece) if piece.isdigit() else piece)
        found.append(((*at, *path), message))
    return found


def promotion_problems(at: tuple[str | int, ...], spec: PipelineSpec) -> list[Found]:
    """`promotion:` on Vertex AI needs the project and region of `vertex:` and a serving
    image; a KFP host's run does not tell mlrelay where its model is."""
    if spec.promotion is None:
        return []
    if spec.backend == "kfp":
        return [
            (
                (*at, "promotion"),
                "`promotion:` is not available with `backend: kfp` (a KFP host does not tell "
                "mlrelay where the run's model is); use `backend: vertex` or "
                "`vertex_custom_job`, or deploy from the pipeline itself",
            )
        ]
    if spec.backend not in CLOUD_BACKENDS:
        return []
    found: list[Found] = []
    if spec.vertex is None and spec.backend == "vertex":
        found.append(
            (
                (*at, "promotion"),
                "`promotion:` on Vertex AI needs a `vertex:` section (the project and region "
                "of the Model Registry and the endpoint)",
            )
        )
    if spec.promotion.serving_image is None:
        found.append(
            (
                (*at, "promotion", "serving_image"),
                "`promotion:` on Vertex AI needs `serving_image`: the container that serves "
                "the model (e.g. a prebuilt scikit-learn prediction image)",
            )
        )
    return found


def expectation_problems(at: tuple[str | int, ...], spec: PipelineSpec) -> list[Found]:
    """With an `expected_schema`, the columns the expectations read are known now: a column not
    in it is found by `mlrelay validate` rather than at the snapshot."""
    if spec.expected_schema is None:
        return []
    known = ", ".join(spec.expected_schema)
    return [
        (
            (*at, "expectations", i),
            f"{expectation.label} reads {column!r}, which is not in expected_schema ({known})",
        )
        for i, expectation in enumerate(spec.expectations)
        for column in expectation.columns
        if column not in spec.expected_schema
    ]


def sql_parameter_problems(
    at: tuple[str | int, ...], source: SourceSpec, defaults: dict[str, Any]
) -> list[Found]:
    """The query's `@name`s (as BigQuery reads them: not in strings, quoted names or comments)
    match `query_parameters` both ways, and each listed name has a default."""
    if source.sql is None:
        return []
    try:
        used = parameter_names(source.sql)
    except UnclosedSql as exc:
        return [((*at, "sql"), f"{exc.problem}; {exc.fix}")]
    found: list[Found] = []
    listed = set(source.query_parameters)
    for name in used:
        if name in listed or name in BUILT_IN_PARAMETERS:
            continue
        if is_parameter_name(name):
            problem = f"@{name} is used but not listed in `query_parameters`; list it there"
        else:
            problem = f"@`{name}` is no parameter name; use letters, digits and underscores"
        found.append(((*at, "sql"), problem))
    for i, param in enumerate(source.query_parameters):
        if param not in used:
            found.append(
                (
                    (*at, "query_parameters", i),
                    f"@{param} is listed but the SQL never uses it (a comment, string or quoted "
                    "name does not count); use it or remove it",
                )
            )
        if param not in defaults:
            found.append(
                ((*at, "query_parameters", i), f"{param!r} needs a default in `parameters`")
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
