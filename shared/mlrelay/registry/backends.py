"""Registry options of the remote pipeline backends (`vertex:`, `kfp:` and `custom_job:` in a
pipeline entry).

Kept apart from `registry.py` so the registry's shape stays readable; `PipelineSpec` refers to
these models and the registry checks that the chosen backend has its section.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from mlrelay.schedules.cron import parse_kfp_cron

_GCS_URI = r"^gs://[a-z0-9][a-z0-9._-]{1,220}(/.*)?$"
# an OAuth 2.0 client id, as IAP shows it: <project number>-<id>.apps.googleusercontent.com
_OAUTH_CLIENT_ID = r"^[0-9]+-[a-z0-9]+\.apps\.googleusercontent\.com$"


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VertexOptions(_Options):
    """Where and as whom a Vertex AI PipelineJob runs."""

    project: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{4,61}[a-z0-9]$")]
    region: Annotated[str, StringConstraints(pattern=r"^[a-z]+-[a-z]+[0-9]+$")]
    service_account: str | None = None
    # full VPC network name: projects/<project number>/global/networks/<network>
    network: str | None = None
    # CMEK: projects/<p>/locations/<region>/keyRings/<ring>/cryptoKeys/<key>
    encryption_key_name: str | None = None
    pipeline_root: Annotated[str, StringConstraints(pattern=_GCS_URI)] | None = None
    # None keeps the template's compile-time caching; true/false overrides it for every task
    enable_caching: bool | None = None


class KfpRecurringOptions(_Options):
    """A KFP recurring run instead of one run: KFP owns the schedule, mlrelay moves it to the
    newest pipeline version and snapshot on every deploy (create the new one, then delete the old
    one: no gap)."""

    # KFP's own cron format: 6 fields, seconds first (e.g. "0 0 6 * * 1"), evaluated by the
    # KFP scheduler in its time zone (UTC on a default install); checked field by field as
    # KFP's parser reads it (mlrelay.schedules.cron)
    cron: str
    max_concurrency: int = Field(ge=1, le=10)
    catchup: bool  # explicit on purpose: true backfills every missed interval after a pause
    enabled: bool = True

    @field_validator("cron")
    @classmethod
    def _kfp_cron(cls, value: str) -> str:
        parse_kfp_cron(value)  # a `CronError` names the cron field and the fix
        return value


class KfpOptions(_Options):
    """A Kubeflow Pipelines host the team runs itself, and how the deployer proves who it is.

    `client_id`: the host is behind Identity-Aware Proxy; kfp gets an ID token for that audience
    from the deployer's own service account. `token`: a bearer token the deployer reads from
    `MLRELAY_KFP_TOKEN_<TOKEN>` (a Secret Manager secret in the cloud). Neither: no credentials,
    except that kfp itself sends a Google access token to an AI Platform Pipelines host
    (`*.googleusercontent.com`)."""

    host: Annotated[str, StringConstraints(pattern=r"^https?://\S+$")]
    experiment: str | None = None  # default: the pipeline's registry name
    namespace: str | None = None  # multi-user installs
    pipeline_root: str | None = None
    enable_caching: bool | None = None
    service_account: str | None = None  # Kubernetes service account of the run
    recurring: KfpRecurringOptions | None = None
    client_id: Annotated[str, StringConstraints(pattern=_OAUTH_CLIENT_ID)] | None = None
    # names the token, never holds it: `token: team` is MLRELAY_KFP_TOKEN_TEAM
    token: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,60}$")] | None = None

    @model_validator(mode="after")
    def _one_credential(self) -> KfpOptions:
        if self.client_id and self.token:
            raise ValueError(
                "`client_id` and `token` are both set, and kfp would send the token only: "
                "keep `client_id` for a host behind IAP, `token` for any other"
            )
        return self


# the registry's Duration shape (mlrelay.registry.specs.DURATION_PATTERN: 90s, 30m, 6h, 2d)
_DURATION = r"^[1-9][0-9]{0,5}(s|m|h|d)$"


class WorkerPool(_Options):
    """One worker pool of a Vertex AI CustomJob (a `WorkerPoolSpec`): its machines, and, for a
    pool after the first, the container it runs (default: the pipeline's `job:`)."""

    machine_type: str = "n1-standard-4"
    # e.g. NVIDIA_TESLA_T4, NVIDIA_L4 (MachineSpec.accelerator_type); with accelerator_count
    accelerator_type: Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_]+$")] | None = None
    accelerator_count: int = Field(default=0, ge=0, le=16)
    replica_count: int = Field(default=1, ge=1, le=1000)
    boot_disk_type: Literal["pd-ssd", "pd-standard"] = "pd-ssd"
    boot_disk_size_gb: int = Field(default=100, ge=100, le=64000)
    # a pool after the first may run its own container (a parameter server, an evaluator); its
    # args and env take the same `{name}` values as `job:`
    image: str | None = None
    command: list[str] | None = None
    args: list[str] | None = None

    @model_validator(mode="after")
    def _accelerators(self) -> WorkerPool:
        if (self.accelerator_type is None) != (self.accelerator_count == 0):
            raise ValueError(
                "set `accelerator_type` and `accelerator_count` together (a count > 0 of a type)"
            )
        return self


class CustomJobOptions(_Options):
    """How a `backend: vertex_custom_job` run's CustomJob runs (its `CustomJobSpec`); where and
    as whom come from the pipeline's `vertex:` section (project, region, service_account,
    network, encryption_key_name)."""

    # pool 0 is the chief: one replica running the pipeline's `job:`
    worker_pools: list[WorkerPool] = Field(
        default_factory=lambda: [WorkerPool()], min_length=1, max_length=4
    )
    spot: bool = False  # Scheduling.strategy SPOT: preemptible capacity, cheaper
    timeout: Annotated[str, StringConstraints(pattern=_DURATION)] | None = None  # e.g. "6h"
    restart_job_on_worker_restart: bool = False

    @model_validator(mode="after")
    def _chief(self) -> CustomJobOptions:
        chief = self.worker_pools[0]
        if chief.replica_count != 1:
            raise ValueError("worker_pools[0] is the chief: its replica_count must be 1")
        if chief.image or chief.command or chief.args:
            raise ValueError(
                "worker_pools[0] runs the pipeline's `job:`; set its image, command and args there"
            )
        return self
