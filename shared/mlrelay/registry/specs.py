"""The registry's shape: typed specs of pipelines, schedules, groups and notifications, plus the
rules every run applies to them (template location, parameter overrides).

`mlrelay.registry` loads and checks the YAML file; this module holds what it loads into.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from mlrelay.contracts import PipelineName, Scalar
from mlrelay.errors import PermanentError
from mlrelay.registry.backends import CustomJobOptions, KfpOptions, VertexOptions
from mlrelay.registry.expectations import ExpectationSpec
from mlrelay.registry.jobs import JobEntry
from mlrelay.schedules.cron import parse_unix_cron

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


# a whole number and a unit: 90s, 30m, 6h, 2d, 1w (mlrelay.registry.expectations.parse_window)
WindowText = Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]*[smhdw]$")]


class DeadlineSpec(_Spec):
    """A run must finish within this long after its slot (its logical time), or the watchdog
    says so once (`pipeline.deadline_missed`)."""

    finish_within: WindowText


class WatchSpec(_Spec):
    """How long a run may wait before the watchdog calls it stuck (`<stage>.stuck`):
    `max_pending` at a stage that has not started its work (no snapshot yet, not submitted,
    the job still pending), `max_runtime` for a snapshot or a job that is running."""

    max_pending: WindowText = "30m"
    max_runtime: WindowText = "6h"
    on_stuck: Literal["alert", "cancel"] = "alert"  # cancel: also ask `mlrelay-cancel` to stop it


ScheduleName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,29}$")]
MemberName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")]


class ScheduleSpec(_Spec):
    """A cron in an explicit IANA time zone; `fan_out` makes each tick one run per member."""

    name: ScheduleName = "default"  # with the owner, names the Cloud Scheduler job
    cron: str
    time_zone: str
    paused: bool = False  # a paused schedule has no Scheduler ticks and no missed-tick alerts
    # a slot with no accepted run this long after its time is missed (`schedule.missed`)
    grace: WindowText = "15m"
    on_missed: Literal["alert", "backfill"] = "alert"  # backfill: also start the missed run
    deadline: DeadlineSpec | None = None  # for this schedule's runs, instead of the pipeline's
    fan_out: dict[MemberName, dict[Identifier, Scalar]] = Field(default_factory=dict)

    @field_validator("cron")
    @classmethod
    def _unix_cron(cls, value: str) -> str:
        parse_unix_cron(value)  # Cloud Scheduler's format; a `CronError` names the cron field
        return value

    @field_validator("time_zone")
    @classmethod
    def _iana_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"time_zone {value!r} is not an IANA zone (e.g. Europe/Amsterdam, UTC)"
            ) from None
        return value


class FailuresSpec(_Spec):
    """When a failing pipeline is worth an alert: on the `after`-th failure in a row (1: every
    failure), then once "recovered" on the next success after an alerted streak."""

    after: int = Field(default=1, ge=1, le=100)


class NotifySpec(_Spec):
    """Who hears about this pipeline's runs. Failures (see `failures`), rejections and dead
    letters: always."""

    slack_channel: str | None = None  # bot-token mode: channel name or id
    # webhook mode: NAME of env var SLACK_WEBHOOK_URL_<NAME> (a secret); unset: SLACK_WEBHOOK_URL
    slack_webhook: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,60}$")] | None = None
    on_success: Literal["always", "never", "on_recovery"] = "always"
    # accepted / snapshot / submitted updates; default: only when on_success is `always`
    progress: bool | None = None
    # alert on the Nth consecutive failure only (flapping pipelines), "recovered" after it
    failures: FailuresSpec = Field(default_factory=FailuresSpec)

    @property
    def posts_progress(self) -> bool:
        return self.on_success == "always" if self.progress is None else self.progress


class GateSpec(_Spec):
    """A metric's gate: a run below `min`, or more than `max_drop` (absolute, in the metric's
    own units) under the last good run, succeeds "with regression"."""

    min: float | None = None
    max_drop: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _some_rule(self) -> GateSpec:
        if self.min is None and self.max_drop is None:
            raise ValueError("give `min`, `max_drop` or both")
        return self


SlackUserId = Annotated[str, StringConstraints(pattern=r"^[UW][A-Z0-9]{2,30}$")]
SlackUserGroupId = Annotated[str, StringConstraints(pattern=r"^S[A-Z0-9]{2,30}$")]


class ActionsSpec(_Spec):
    """Who may act on this pipeline's runs from Slack (retry, rerun, cancel, approve, reject, and
    the `/mlrelay status|runs` answers): these Slack user ids, or members of these user groups.
    Empty: nobody."""

    allowed_users: list[SlackUserId] = Field(default_factory=list)
    allowed_user_groups: list[SlackUserGroupId] = Field(default_factory=list)


DURATION_PATTERN = r"^[1-9][0-9]{0,5}(s|m|h|d)$"
Duration = Annotated[str, StringConstraints(pattern=DURATION_PATTERN)]
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration_seconds(text: str) -> int:
    """`90s`, `30m`, `24h`, `2d` -> seconds (the pattern already checked the shape)."""
    return int(text[:-1]) * _DURATION_UNITS[text[-1]]


class PromotionSpec(_Spec):
    """After a successful run (its gates passed), its model becomes a new version of `model` and
    serves `canary_percent` of `endpoint` beside the champion, until a person (or
    `auto_promote_after`) promotes it to 100 % or rolls it back. On Google Cloud: the Vertex AI
    Model Registry and an endpoint, in the project and region of `vertex:`; embedded: a model
    folder and an endpoint file under `$MLRELAY_HOME`."""

    # the Model Registry model id (each run a new version of it); embedded: the model's name
    model: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,62}$")]
    # the endpoint's id (Vertex AI: its numeric id or the full resource name); embedded: a name
    endpoint: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9/_.-]{0,200}$")]
    canary_percent: int = Field(default=10, ge=1, le=100)
    # promote a canary nobody promoted or rolled back within this long (unset: wait for a person)
    auto_promote_after: Duration | None = None
    # the run's output holding the model: a pipeline's output artifact name; a job's model
    # directory (`$AIP_MODEL_DIR`) is its output `model`
    artifact: Identifier = "model"
    # Vertex AI: the serving container (e.g. a prebuilt scikit-learn one) and its machines
    serving_image: str | None = None
    machine_type: str = "n1-standard-2"
    min_replicas: int = Field(default=1, ge=1, le=100)
    max_replicas: int = Field(default=1, ge=1, le=100)


class PipelineSpec(_Spec):
    description: str = ""
    source: SourceSpec
    snapshot_dataset: (
        Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,63}$")] | None
    ) = None
    schedules: list[ScheduleSpec] = Field(default_factory=list)
    # a compiled KFP pipeline (the pipeline backends); the job backends run `job:` instead
    template: str | None = None
    backend: Literal["local", "vertex", "kfp", "local_job", "vertex_custom_job"] = "local"
    # options of `backend: vertex`; also the project and region of `vertex_custom_job` and of
    # `promotion` on Google Cloud
    vertex: VertexOptions | None = None
    kfp: KfpOptions | None = None  # options of `backend: kfp`
    job: JobEntry | None = None  # what `backend: local_job` / `vertex_custom_job` runs
    # `backend: vertex_custom_job`: worker pools, spot, timeout (default: one n1-standard-4)
    custom_job: CustomJobOptions | None = None
    promotion: PromotionSpec | None = None  # canary promotion of the run's model
    parameters: dict[Identifier, Scalar] = Field(default_factory=dict)
    overridable: list[Identifier] = Field(default_factory=list)
    notify: NotifySpec = Field(default_factory=NotifySpec)
    actions: ActionsSpec = Field(default_factory=ActionsSpec)
    # column -> Parquet (Arrow) type as the manifest writes it, e.g. `timestamp[us, tz=UTC]`;
    # a snapshot whose schema differs fails, naming the columns
    expected_schema: dict[str, str] | None = None
    # checks on the snapshot before any compute: a failed `error` one stops the run
    expectations: list[ExpectationSpec] = Field(default_factory=list)
    # metric -> gate; a missed gate makes the run `succeeded_with_regression` (announced like a
    # failure). Metrics are higher-is-better: `max_drop` is how far under the baseline it may go
    gates: dict[str, GateSpec] = Field(default_factory=dict)
    watch: WatchSpec = Field(default_factory=WatchSpec)  # when the watchdog calls a run stuck
    deadline: DeadlineSpec | None = None  # finish each run within this long after its slot
    # `before_deploy`: each run is held after its snapshot until a person approves it (Slack
    # or `mlrelay approve`); a held run not approved within `approval_timeout` is rejected
    approval: Literal["before_deploy"] | None = None
    approval_timeout: Duration = "24h"

    @property
    def approval_timeout_seconds(self) -> int:
        return duration_seconds(self.approval_timeout)

    @property
    def runs_job(self) -> bool:
        """A plain job (`job:`), not a compiled pipeline (`template:`)."""
        return self.backend in JOB_BACKENDS

    @model_validator(mode="after")
    def _template_or_job(self) -> PipelineSpec:
        if self.runs_job:
            if self.job is None:
                raise ValueError(f"`backend: {self.backend}` runs a `job:`; add one")
            if self.template is not None:
                raise ValueError(f"`backend: {self.backend}` runs `job:`, not a `template:`")
        else:
            if self.template is None:
                raise ValueError(f"`backend: {self.backend}` runs a compiled `template:`; add one")
            if self.job is not None:
                raise ValueError(
                    f"`job:` is for `backend: local_job` or `vertex_custom_job`, not {self.backend}"
                )
        return self


JOB_BACKENDS = ("local_job", "vertex_custom_job")


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
    # set by the loader (the file's folder), never written in the file: not in the JSON Schema
    base_dir: SkipJsonSchema[Path] = Field(default=Path(), exclude=True)

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
        """The template as a URI or an absolute path (relative paths resolve against the file);
        "" for a pipeline that runs a `job:`."""
        template = self.pipeline(name).template
        return "" if template is None else template_location(template, self.base_dir)

    def dataset(self, name: str) -> str:
        return self.pipeline(name).snapshot_dataset or name.replace("-", "_")


def _cron_ok(cron: str) -> bool:
    from croniter import croniter

    return bool(croniter.is_valid(cron))


def template_location(template: str, base_dir: Path) -> str:
    if "://" in template or template.startswith("/"):
        return template
    return str((base_dir / template).resolve())


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
