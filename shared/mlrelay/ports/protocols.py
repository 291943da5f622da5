"""The narrow interfaces between stage logic and the outside world (one per outside system).

Each has a Google implementation and an embedded one; `mlrelay.ports.container.Ports` picks them
from the settings, in one place. The notifier's port, `Chat`, lives with the notifier
(`mlrelay_notifier.chat`): it speaks in the notifier's own messages.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol


class Publisher(Protocol):
    def publish(self, topic: str, data: bytes, attributes: dict[str, str]) -> str:
        """Publish one message; returns its message id once the bus has accepted it."""
        ...


class ObjectStore(Protocol):
    """A bucket: GCS, or a local folder. Keys are '/'-separated relative paths."""

    def uri(self, key: str) -> str: ...
    def read(self, key: str) -> bytes | None: ...
    def read_versioned(self, key: str) -> tuple[bytes, str] | None: ...
    def create(self, key: str, data: bytes) -> bool:
        """Create-only write: False (and nothing written) when the key already exists."""
        ...

    def replace(self, key: str, data: bytes, if_generation: str) -> bool:
        """Overwrite only if the object is still at `if_generation` (compare-and-swap)."""
        ...

    def write(self, key: str, data: bytes) -> None: ...
    def delete(self, key: str) -> None: ...
    def delete_if(self, key: str, if_generation: str) -> bool:
        """Delete only if the object is still at `if_generation`; False when it is not."""
        ...

    def list(self, prefix: str) -> list[str]: ...


@dataclass(frozen=True)
class ColumnSchema:
    name: str
    type: str
    nullable: bool = True


@dataclass(frozen=True)
class ExportedFile:
    key: str
    size_bytes: int
    sha256: str
    crc32c: str


@dataclass(frozen=True)
class SnapshotPlan:
    """What to copy: a table or a parameterised query, into a key prefix of the store."""

    source_kind: Literal["table", "query"]
    table: str | None
    sql: str | None
    query_parameters: dict[str, Any]
    prefix: str
    job_id: str
    # read the source as of this time (BigQuery `FOR SYSTEM_TIME AS OF`; a query may also use it
    # as the `@snapshot_time` parameter); None: as of the export
    snapshot_time: datetime | None = None


@dataclass(frozen=True)
class ExportResult:
    files: list[ExportedFile]
    row_count: int
    schema: list[ColumnSchema]
    engine: str
    job_ids: list[str] = field(default_factory=list)
    point_in_time: str = "read_at_export"  # how the engine pinned the read, as the manifest says
    source_schema: list[ColumnSchema] = field(default_factory=list)  # the warehouse's own types


SqlDialect = Literal["duckdb", "bigquery"]


class AggregateQuery(Protocol):
    """One aggregate query over a snapshot (the expectations' measures), in either dialect."""

    def render(self, dialect: SqlDialect, relation: str) -> tuple[str, dict[str, Any]]:
        """(SQL reading `relation`, its parameters by name): no value is ever in the SQL."""
        ...


class Warehouse(Protocol):
    def export_snapshot(self, plan: SnapshotPlan, store: ObjectStore) -> ExportResult:
        """Copy the source to Parquet files under `plan.prefix`, without the data passing
        through this process where the engine can write it itself."""
        ...

    def measure_snapshot(
        self, plan: SnapshotPlan, store: ObjectStore, export: ExportResult, query: AggregateQuery
    ) -> dict[str, Any]:
        """Run `query` inside the engine over what `export_snapshot` read or wrote, once per
        run (a redelivery reuses the job), and return its one row by column name."""
        ...


@dataclass(frozen=True)
class PipelineOutcome:
    status: Literal["submitted", "succeeded", "failed", "cancelled"]
    job_name: str
    outputs: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    failed_task: str | None = None
    error: str | None = None
    links: dict[str, str] = field(default_factory=dict)
    duration_seconds: float = 0.0
    # what the service recorded (job resource name, template digest, KFP ids, ...)
    details: dict[str, Any] = field(default_factory=dict)
    # the pipeline's own exit-handler report (a LifecycleEvent as JSON), when the backend holds it
    completion: dict[str, Any] | None = None


@dataclass(frozen=True)
class JobState:
    """What the pipeline service says of a run's job now."""

    state: str  # the service's own name, e.g. PIPELINE_STATE_RUNNING, SUCCEEDED, RUNNING
    status: Literal["running", "pending", "succeeded", "failed", "cancelled"]
    failed_task: str | None = None
    error: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    links: dict[str, str] = field(default_factory=dict)

    @property
    def terminal(self) -> bool:
        return self.status in ("succeeded", "failed", "cancelled")


class PipelineBackend(Protocol):
    def completion_destination(self, run_id: str) -> str:
        """Where the pipeline's completion reporter sends its LifecycleEvent (a Pub/Sub topic
        path, or a local outbox folder the backend reads back)."""
        ...

    def start(
        self,
        *,
        run_id: str,
        pipeline: str,
        template: str,
        parameters: dict[str, Any],
        labels: dict[str, str],
        announce: Callable[[dict[str, str]], None],
    ) -> PipelineOutcome:
        """Start (or find) the run named `run_id` (labelled `labels` where the service has
        labels); call `announce(links)` once the service has accepted it. Async backends return
        status `submitted`, the local one the final state."""
        ...

    def cancel(self, *, run_id: str, job_name: str, requested: dict[str, str]) -> str:
        """Ask the service to stop the run (`job_name`: what `start` recorded). Returns what the
        service now says of it (e.g. `PIPELINE_STATE_CANCELLING`); a run already being cancelled
        is success (a redelivered command); a run already finished raises PermanentError naming
        its state, without changing it. `requested`: who asked, when and from where (the
        `pipeline.cancelled` event's `details.command`), for a backend whose `start` reports
        the run's end itself (the local one)."""
        ...

    def job_state(self, *, run_id: str, job_name: str) -> JobState | None:
        """What the service says of the run's job now (`job_name`: what `start` recorded);
        None when the service has no such job."""
        ...


NEW_DEPLOYMENT = "0"
"""In a `traffic` split passed to `ModelEndpoint.deploy`: the key of the model being deployed
(Vertex AI's own convention for DeployModel's `traffic_split`)."""


@dataclass(frozen=True)
class ModelVersion:
    """One version of a pipeline's model, made from one run's model artifact."""

    name: str  # Vertex AI: projects/<p>/locations/<r>/models/<model>@<version id>; embedded: a key
    version_id: str
    run_id: str
    artifact_uri: str  # where the model's files are (a folder, or one file)


@dataclass(frozen=True)
class DeployedModel:
    id: str  # the endpoint's own id of this deployment
    model: str  # the ModelVersion.name it serves
    run_id: str | None  # the run whose model it is; None: not deployed by mlrelay


@dataclass(frozen=True)
class EndpointState:
    endpoint: str  # its resource name, or the embedded endpoint's name
    deployed: tuple[DeployedModel, ...]
    traffic: dict[str, int]  # deployed model id -> percent; sums to 100 when any model is deployed


class ModelEndpoint(Protocol):
    """A model registry and one serving endpoint: Vertex AI's, or the embedded one (files under
    `$MLRELAY_HOME`). Every call is safe to repeat after a lost answer."""

    def upload(self, *, run_id: str, artifact_uri: str, labels: dict[str, str]) -> ModelVersion:
        """The run's version of the model: the one already made for `run_id` (found by its
        version alias), else a new version (the model itself made by its first upload)."""
        ...

    def state(self) -> EndpointState:
        """What the endpoint serves now."""
        ...

    def deploy(self, *, version: ModelVersion, traffic: dict[str, int]) -> EndpointState:
        """Deploy `version` with the split `traffic` (its own share under `NEW_DEPLOYMENT`);
        when a deployed model already serves `version`, only set the split."""
        ...

    def set_traffic(self, traffic: dict[str, int]) -> EndpointState:
        """Move the endpoint to exactly this split of its deployed models."""
        ...

    def undeploy(self, *, deployed_model_id: str, traffic: dict[str, int]) -> EndpointState:
        """Take one deployed model off the endpoint, the rest then split as `traffic`; a model
        no longer deployed is success."""
        ...
