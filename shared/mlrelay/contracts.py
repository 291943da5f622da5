"""Typed messages that travel between the services, one model per kind, each versioned.

Every model serialises to compact JSON (the Pub/Sub message data) and names the attributes that
routing and filtering need. `parse_message` is the single way in: whatever is wrong with the input,
it raises `InvalidMessageError` naming the field and what was expected.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from mlrelay.errors import InvalidMessageError

PIPELINE_NAME_PATTERN = r"^[a-z][a-z0-9-]{0,39}$"
PipelineName = Annotated[str, StringConstraints(pattern=PIPELINE_NAME_PATTERN)]
RunId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{2,127}$")]
Scalar = bool | int | float | str
Parameters = dict[str, Scalar]
TriggerKind = Literal["manual", "schedule", "backfill"]


def utc_now() -> datetime:
    return datetime.now(UTC)


class Message(BaseModel):
    """Base of every message: strict about unknown fields so typos are caught, not ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: ClassVar[str] = "message"

    def to_json(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()

    def attributes(self) -> dict[str, str]:
        """Pub/Sub attributes: what a subscription filter or a log query needs without parsing."""
        attrs = {"event_type": self.kind, "schema_version": str(getattr(self, "schema_version", 1))}
        for name in ("run_id", "pipeline"):
            value = getattr(self, name, None)
            if value:
                attrs[name] = str(value)
        return attrs


class ScheduleRef(BaseModel):
    """The schedule a tick comes from, as its Cloud Scheduler job carries it: the trigger derives
    the slot from this cron and zone and the message's publish time."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,29}$")]
    cron: Annotated[str, StringConstraints(min_length=9, max_length=200)]
    time_zone: Annotated[str, StringConstraints(min_length=1, max_length=64)]


class RunRequest(Message):
    """Ask for one run of a registered pipeline (from Cloud Scheduler, the CLI or any publisher).

    `pipeline` may name a group of the registry: one run per member. With `schedule` and no
    `logical_time` it is a scheduler tick, and the slot comes from the publish time."""

    kind: ClassVar[str] = "run_request"
    schema_version: Literal[1] = 1
    pipeline: PipelineName
    parameters: Parameters = Field(default_factory=dict)
    dedup_key: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    logical_time: AwareDatetime | None = None
    trigger: TriggerKind = "manual"
    requested_by: Annotated[str, StringConstraints(max_length=200)] | None = None
    schedule: ScheduleRef | None = None


class SnapshotRequest(Message):
    """Trigger -> snapshotter: copy the pipeline's source as of `logical_time`."""

    kind: ClassVar[str] = "snapshot_request"
    schema_version: Literal[1] = 1
    run_id: RunId
    pipeline: PipelineName
    parameters: Parameters
    logical_time: AwareDatetime
    trigger: TriggerKind
    requested_by: str | None = None
    accepted_at: AwareDatetime


class SnapshotRef(BaseModel):
    """What the deployer needs to know about a finished snapshot."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    manifest_uri: str
    fingerprint: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
    row_count: int = Field(ge=0)
    total_bytes: int = Field(ge=0)
    file_count: int = Field(ge=0)


class DeployRequest(Message):
    """Snapshotter -> deployer: start the pipeline on this snapshot."""

    kind: ClassVar[str] = "deploy_request"
    schema_version: Literal[1] = 1
    run_id: RunId
    pipeline: PipelineName
    parameters: Parameters
    logical_time: AwareDatetime
    trigger: TriggerKind
    requested_by: str | None = None
    accepted_at: AwareDatetime
    snapshot: SnapshotRef


Stage = Literal["trigger", "snapshot", "pipeline", "notify", "delivery", "schedule", "promotion"]
Status = Literal[
    "accepted",
    "rejected",
    "started",
    "completed",
    "submitted",
    "succeeded",
    "failed",
    "cancelled",
    "dead_lettered",
    "retried",  # a person asked for a new attempt of this run (details name it)
    "held",  # pipeline.held: the approval gate holds the run until a person approves it
    "stuck",  # <stage>.stuck: the watchdog found the run stalled at that stage
    "deadline_missed",  # pipeline.deadline_missed: not finished within the deadline
    "missed",  # schedule.missed: a slot that never got a run
    "canary",  # promotion.canary: the run's model serves `canary_percent` beside the champion
    "promoted",  # promotion.promoted: the run's model serves 100 % (the new champion)
    "rolled_back",  # promotion.rolled_back: the previous split restored, the challenger gone
]


class LifecycleEvent(Message):
    """Every stage -> notifier: something happened to a run."""

    kind: ClassVar[str] = "lifecycle"
    schema_version: Literal[1] = 1
    run_id: str = Field(min_length=1, max_length=200)
    pipeline: str | None = None
    stage: Stage
    status: Status
    occurred_at: AwareDatetime = Field(default_factory=utc_now)
    summary: str = ""
    error: str | None = None
    trigger: TriggerKind | None = None
    parameters: Parameters = Field(default_factory=dict)
    figures: dict[str, float | int | str] = Field(default_factory=dict)
    links: dict[str, str] = Field(default_factory=dict)
    details: dict[str, Any] = Field(default_factory=dict)

    @property
    def event_type(self) -> str:
        return f"{self.stage}.{self.status}"

    def attributes(self) -> dict[str, str]:
        attrs = super().attributes()
        attrs["event_type"] = f"lifecycle.{self.event_type}"
        return attrs


CommandAction = Literal[
    "retry", "rerun", "cancel", "approve", "reject", "backfill", "promote", "rollback"
]
COMMAND_ACTIONS: tuple[str, ...] = (
    "retry",
    "rerun",
    "cancel",
    "approve",
    "reject",
    "backfill",
    "promote",
    "rollback",
)
CommandSource = Literal["slack", "cli", "watchdog"]


class RunCommand(Message):
    """A person asks for something to be done to a run (a Slack button or slash command, or the
    CLI). Published once per `action_key`: the same click delivered twice, Slack's retries and
    concurrent clicks on one card share the key, so the consumer acts once per run state.

    `response_url` is Slack's reply address for this interaction: not a secret, but a capability
    (anyone holding it may post into the conversation for 30 minutes), so it is never logged."""

    kind: ClassVar[str] = "run_command"
    schema_version: Literal[1] = 1
    action: CommandAction
    run_id: RunId
    pipeline: PipelineName
    requested_by: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    requested_at: AwareDatetime
    source: CommandSource
    # `<run_id>/<action>/<state>`: the run state (a digest of its ledger) the request was made in
    action_key: Annotated[
        str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{2,127}/[a-z]+/[0-9a-f]{16}$")
    ]
    response_url: Annotated[str, StringConstraints(max_length=500)] | None = None

    def attributes(self) -> dict[str, str]:
        attrs = super().attributes()
        attrs["action"] = self.action
        return attrs


M = TypeVar("M", bound=Message)

_EXPECTATIONS = {
    "missing": "this field is required",
    "extra_forbidden": "unknown field; remove it or check its spelling",
    "string_pattern_mismatch": "does not match the allowed pattern",
    "literal_error": "is not one of the allowed values",
    "timezone_aware": "needs a time zone, e.g. 2026-01-31T06:00:00Z",
    "datetime_from_date_parsing": "expected an ISO-8601 date-time, e.g. 2026-01-31T06:00:00Z",
}


def describe_validation_error(exc: ValidationError, prefix: str = "") -> list[tuple[str, str]]:
    """(field path, what was expected) for each problem pydantic found."""
    problems = []
    for err in exc.errors(include_url=False):
        loc = [str(p) for p in err["loc"]]
        is_key = "[key]" in loc
        path = ".".join(p for p in loc if p != "[key]") or "(message)"
        if prefix:
            path = f"{prefix}.{path}" if path != "(message)" else prefix
        hint = _EXPECTATIONS.get(err["type"])
        text = err["msg"] if hint is None else f"{err['msg']}: {hint}"
        if is_key:
            text = f"the name {text[0].lower()}{text[1:]}"
        if err["type"] not in ("missing",) and "input" in err:
            text += f" (got {err['input']!r:.80})"
        problems.append((path, text))
    return problems


def parse_message(model: type[M], data: bytes | str | dict[str, Any]) -> M:
    """Decode and validate one message; any problem raises `InvalidMessageError` naming
    the field."""
    if isinstance(data, bytes | str):
        try:
            raw = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidMessageError(
                "data", f"is not valid JSON ({exc})", f"publish a JSON object for a {model.kind}"
            ) from None
    else:
        raw = data
    if not isinstance(raw, dict):
        raise InvalidMessageError(
            "data",
            f"expected a JSON object, got {type(raw).__name__}",
            f"publish a JSON object for a {model.kind}",
        )
    version = raw.get("schema_version", 1)
    if version != 1:
        raise InvalidMessageError(
            "schema_version",
            f"version {version!r} is not understood by this service",
            "publish schema_version 1 or deploy a newer mlrelay",
        )
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = describe_validation_error(exc)
        (field, first), rest = problems[0], problems[1:]
        text = "; ".join([first, *(f"{path}: {what}" for path, what in rest)])
        raise InvalidMessageError(field, text) from None
