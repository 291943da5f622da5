"""Registry options of the remote pipeline backends (`vertex:` and `kfp:` in a pipeline entry).

Kept apart from `registry.py` so the registry's shape stays readable; `PipelineSpec` refers to
these models and the registry checks that the chosen backend has its section.
"""

from __future__ import annotations

from typing import Annotated

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
