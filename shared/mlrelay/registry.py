"""The pipeline registry: one YAML file listing every pipeline mlrelay may run.

Loading reports *every* problem at once, each with file, line and field, so `mlrelay validate`
is useful in a pull request. Paths inside the file are relative to the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from mlrelay.backend_options import KfpOptions, VertexOptions
from mlrelay.contracts import (
    PIPELINE_NAME_PATTERN,
    PipelineName,
    Scalar,
    describe_validation_error,
)
from mlrelay.errors import PermanentError

_CRON_FIELD = re.compile(r"^[\d*/,\-A-Za-z?LW#]+$")
_SQL_PARAM = re.compile(r"@([A-Za-z_][A-Za-z0-9_]*)")
Identifier = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceSpec(_Spec):
    """A table (`dataset.table`) or a SQL query whose `@name` parameters come from the run."""

    table: str | None = None
    sql: str | None = None
    query_parameters: list[Identifier] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_kind(self) -> SourceSpec:
        if (self.table is None) == (self.sql is None):
            raise ValueError("give exactly one of `table` or `sql`")
        if self.table is not None and self.query_parameters:
            raise ValueError("`query_parameters` only applies to a `sql` source")
        return self

    @property
    def kind(self) -> Literal["table", "query"]:
        return "table" if self.table is not None else "query"


ScheduleName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,29}$")]
MemberName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")]


class ScheduleSpec(_Spec):
    """A cron in an explicit IANA time zone; `fan_out` makes each tick one run per member."""

    name: ScheduleName = "default"  # with the owner, names the Cloud Scheduler job
    cron: str
    time_zone: str
    paused: bool = False
    fan_out: dict[MemberName, dict[Identifier, Scalar]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _valid(self) -> ScheduleSpec:
        problems = []
        parts = self.cron.split()
        if (
            len(parts) != 5
            or not all(_CRON_FIELD.match(p) for p in parts)
            or not _cron_ok(self.cron)
        ):
            problems.append(
                f"cron {self.cron!r} needs 5 fields: minute hour day-of-month month day-of-week"
                + (" (a value is out of range)" if len(parts) == 5 else "")
            )
        try:
            ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            problems.append(
                f"time_zone {self.time_zone!r} is not an IANA zone (e.g. Europe/Amsterdam, UTC)"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self


class NotifySpec(_Spec):
    """Who hears about this pipeline's runs. Failures, rejections and dead letters: always."""

    slack_channel: str | None = None  # bot-token mode: channel name or id
    # webhook mode: NAME of env var SLACK_WEBHOOK_URL_<NAME> (a secret); unset: SLACK_WEBHOOK_URL
    slack_webhook: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,60}$")] | None = None
    on_success: Literal["always", "never", "on_recovery"] = "always"
    # accepted / snapshot / submitted updates; default: only when on_success is `always`
    progress: bool | None = None

    @property
    def posts_progress(self) -> bool:
        return self.on_success == "always" if self.progress is None else self.progress


class PipelineSpec(_Spec):
    description: str = ""
    source: SourceSpec
    snapshot_dataset: (
        Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,63}$")] | None
    ) = None
    schedules: list[ScheduleSpec] = Field(default_factory=list)
    template: str
    backend: Literal["local", "vertex", "kfp"] = "local"
    vertex: VertexOptions | None = None  # options of `backend: vertex`
    kfp: KfpOptions | None = None  # options of `backend: kfp`
    parameters: dict[Identifier, Scalar] = Field(default_factory=dict)
    overridable: list[Identifier] = Field(default_factory=list)
    notify: NotifySpec = Field(default_factory=NotifySpec)
    # column -> Parquet (Arrow) type as the manifest writes it, e.g. `timestamp[us, tz=UTC]`;
    # a snapshot whose schema differs fails, naming the columns
    expected_schema: dict[str, str] | None = None


class GroupMember(_Spec):
    pipeline: PipelineName
    parameters: dict[Identifier, Scalar] = Field(default_factory=dict)


class GroupSpec(_Spec):
    """Pipelines that run together: each tick of a group schedule is one run per member."""

    description: str = ""
    members: list[GroupMember] = Field(min_length=1)
    schedules: list[ScheduleSpec] = Field(default_factory=list)


class Registry(_Spec):
    version: Literal[1] = 1
    pipelines: dict[PipelineName, PipelineSpec]
    groups: dict[PipelineName, GroupSpec] = Field(default_factory=dict)
    base_dir: Path = Field(default=Path(), exclude=True)

    def pipeline(self, name: str) -> PipelineSpec:
        try:
            return self.pipelines[name]
        except KeyError:
            known = ", ".join(sorted(self.pipelines)) or "none"
            raise PermanentError(
                "pipeline",
                f"{name!r} is not in the registry",
                f"use one of: {known}, or add it to the registry",
            ) from None

    def template_location(self, name: str) -> str:
        """The template as a URI or an absolute path (relative paths resolve against the file)."""
        return _template_location(self.pipeline(name).template, self.base_dir)

    def dataset(self, name: str) -> str:
        return self.pipeline(name).snapshot_dataset or name.replace("-", "_")


@dataclass(frozen=True)
class RegistryProblem:
    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field}: {self.message}"


class RegistryError(PermanentError):
    def __init__(self, problems: list[RegistryProblem]) -> None:
        self.problems = problems
        first = problems[0]
        super().__init__(
            first.field,
            "\n".join(str(p) for p in problems),
            "fix the registry file and run `mlrelay validate`",
        )


def _line_of(doc: Any, path: tuple[str | int, ...]) -> int:
    """1-based line of the deepest part of `path` that exists in the ruamel document."""
    node, line = doc, 1
    for part in path:
        lc = getattr(node, "lc", None)
        try:
            if isinstance(part, int) and isinstance(node, list) and part < len(node):
                line = (lc.item(part)[0] if lc else line - 1) + 1
                node = node[part]
            elif isinstance(node, dict) and part in node:
                line = (lc.key(part)[0] if lc else line - 1) + 1
                node = node[part]
            else:
                break
        except (KeyError, IndexError, TypeError):
            break
    return line


def _semantic_problems(name: str, spec: PipelineSpec, base_dir: Path) -> list[_Found]:
    found: list[_Found] = []
    at: tuple[str | int, ...] = ("pipelines", name)
    found += _schedule_problems(at, spec.schedules, {name: spec})
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
    location = _template_location(spec.template, base_dir)
    if "://" not in location and not Path(location).is_file():
        found.append(
            (
                (*at, "template"),
                f"file {location} does not exist; compile the pipeline or fix the path",
            )
        )
    return found


_Found = tuple[tuple[str | int, ...], str]


def _validation_problems(exc: ValidationError, prefix: tuple[str | int, ...]) -> list[_Found]:
    found: list[_Found] = []
    for err in exc.errors(include_url=False):
        single = ValidationError.from_exception_data(exc.title, [err])  # type: ignore[list-item]
        text = describe_validation_error(single)[0][1]
        text = text.removeprefix("Value error, ")
        if err["type"] == "value_error":  # a model-level check: the input is the whole mapping
            text = text.split(" (got {")[0]
        loc = tuple(p for p in err["loc"] if p != "[key]")
        found.append(((*prefix, *loc), text))
    return found


def parse_registry(text: str, file: str = "<registry>", base_dir: Path | None = None) -> Registry:
    """Validate registry YAML text; all problems are raised together in a `RegistryError`."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    base = base_dir or Path()
    try:
        raw = YAML(typ="rt").load(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        raise RegistryError(
            [RegistryProblem(file, line, "(yaml)", str(exc).splitlines()[0])]
        ) from None
    if not isinstance(raw, dict) or not isinstance(raw.get("pipelines"), dict):
        raise RegistryError(
            [
                RegistryProblem(
                    file, 1, "pipelines", "expected a mapping `pipelines:` of name -> pipeline"
                )
            ]
        )
    found: list[_Found] = []
    extra = {k: v for k, v in raw.items() if k != "pipelines"}
    try:
        Registry.model_validate({**extra, "pipelines": {}})
    except ValidationError as exc:
        found += _validation_problems(exc, ())
    specs: dict[str, PipelineSpec] = {}
    for name, raw_spec in raw["pipelines"].items():
        at: tuple[str | int, ...] = ("pipelines", name)
        if not isinstance(name, str) or not re.match(PIPELINE_NAME_PATTERN, name):
            found.append(
                (
                    at,
                    f"the name {name!r} must be lowercase letters, digits and hyphens, "
                    "starting with a letter (at most 40)",
                )
            )
        try:
            spec = PipelineSpec.model_validate(raw_spec)
        except ValidationError as exc:
            found += _validation_problems(exc, at)
            continue
        found += _semantic_problems(str(name), spec, base)
        specs[str(name)] = spec
    found += _group_problems(extra.get("groups"), specs)
    if found:
        raise RegistryError(
            [
                RegistryProblem(file, _line_of(raw, path), ".".join(map(str, path)), message)
                for path, message in found
            ]
        )
    return Registry.model_validate({**extra, "pipelines": specs, "base_dir": base})


def _cron_ok(cron: str) -> bool:
    from croniter import croniter

    return bool(croniter.is_valid(cron))


def _schedule_problems(
    at: tuple[str | int, ...], schedules: list[ScheduleSpec], pipelines: dict[str, PipelineSpec]
) -> list[_Found]:
    """Unique schedule names; fan-out members may set only overridable, well-typed parameters."""
    found: list[_Found] = []
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


def _group_problems(raw_groups: Any, specs: dict[str, PipelineSpec]) -> list[_Found]:
    found: list[_Found] = []
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
        found += _schedule_problems(at, group.schedules, {})
        for i, schedule in enumerate(group.schedules):
            if schedule.fan_out:
                found.append(
                    ((*at, "schedules", i, "fan_out"), "a group fans out over its `members`")
                )
    return found


def _template_location(template: str, base_dir: Path) -> str:
    if "://" in template or template.startswith("/"):
        return template
    return str((base_dir / template).resolve())


def load_registry(path: str | Path) -> Registry:
    file = Path(path)
    try:
        text = file.read_text()
    except OSError as exc:
        raise RegistryError(
            [RegistryProblem(str(file), 0, "(file)", f"cannot read: {exc.strerror}")]
        ) from None
    return parse_registry(text, str(file), file.parent.resolve())


def resolve_parameters(spec: PipelineSpec, overrides: dict[str, Scalar]) -> dict[str, Scalar]:
    """Registry defaults + allowed, type-checked overrides; a bad override is a `PermanentError`."""
    effective = dict(spec.parameters)
    allowed = ", ".join(spec.overridable) or "none"
    for key, value in sorted(overrides.items()):
        if key not in spec.parameters:
            raise PermanentError(
                f"parameters.{key}",
                "is not a parameter of this pipeline",
                f"parameters you may set: {allowed}",
            )
        if key not in spec.overridable:
            raise PermanentError(
                f"parameters.{key}", "may not be overridden", f"parameters you may set: {allowed}"
            )
        effective[key] = _coerce(key, spec.parameters[key], value)
    return effective


def _coerce(key: str, default: Scalar, value: Scalar) -> Scalar:
    expected = type(default)
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if type(value) is not expected:
        raise PermanentError(
            f"parameters.{key}",
            f"expected {expected.__name__} like the default {default!r}, got {value!r}",
            f"pass {_KIND_OF_VALUE[expected]}",
        )
    return value


_KIND_OF_VALUE: dict[type, str] = {
    int: "a whole number",
    float: "a number",
    str: "a string",
    bool: "true or false",
}
