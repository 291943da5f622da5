"""Vertex AI custom training: one CustomJob per run, created with the low-level `aiplatform_v1`
JobServiceClient over REST (`backend: vertex_custom_job`).

The service assigns a custom job's id, so the run id cannot be it (as it is for a PipelineJob).
The run's job is found by its `mlrelay-run-id` label instead: before every create attempt the
project's custom jobs are listed with `labels.mlrelay-run-id="<label>"`, and a job found is the
run's. A create whose answer was lost (it reached the service, the connection dropped) is
therefore never repeated blindly: the next attempt, or the redelivered DeployRequest, lists
first and finds the job the lost answer was about. The create itself is never retried by the
client library for the same reason.

The job runs the pipeline's `job:` entry (mlrelay.registry.jobs: the job contract) in worker
pool 0, with `base_output_directory` = the run's folder in mlrelay's bucket (`jobs/<run_id>/`):
Vertex AI sets `AIP_MODEL_DIR` to its `model/` itself. A custom job has no exit handler: its end
comes from the log relay or the watchdog (`custom_job_events`, `job_outcome`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

import structlog

from mlrelay.errors import ConfigurationError, PermanentError, TransientError
from mlrelay.ports.protocols import JobState, PipelineOutcome
from mlrelay.registry.backends import CustomJobOptions, VertexOptions, WorkerPool
from mlrelay.registry.jobs import (
    MODEL_OUTPUT,
    JobEntry,
    RenderedEntry,
    job_environment,
    job_values,
    render_entry,
)
from mlrelay.registry.specs import duration_seconds
from mlrelay_deployer.vertex_backend import worth_retrying

log = structlog.get_logger()

RUN_LABEL = "mlrelay-run-id"
JobStatus = Literal["running", "pending", "succeeded", "failed", "cancelled"]
# JobState -> mlrelay's word (CANCELLING is not an end yet: its CANCELLED follows; EXPIRED: a
# job that waited for capacity longer than its max wait; PARTIALLY_SUCCEEDED is for batch jobs)
STATUS_OF_STATE: dict[str, JobStatus] = {
    "JOB_STATE_UNSPECIFIED": "pending",
    "JOB_STATE_QUEUED": "pending",
    "JOB_STATE_PENDING": "pending",
    "JOB_STATE_RUNNING": "running",
    "JOB_STATE_UPDATING": "running",
    "JOB_STATE_PAUSED": "running",
    "JOB_STATE_CANCELLING": "running",
    "JOB_STATE_SUCCEEDED": "succeeded",
    "JOB_STATE_PARTIALLY_SUCCEEDED": "failed",
    "JOB_STATE_FAILED": "failed",
    "JOB_STATE_EXPIRED": "failed",
    "JOB_STATE_CANCELLED": "cancelled",
}
CANCELLED_STATES = ("JOB_STATE_CANCELLING", "JOB_STATE_CANCELLED")
# what Vertex AI itself sets from `base_output_directory`: not ours to send
_SET_BY_VERTEX = ("AIP_MODEL_DIR",)


def console_url(options: VertexOptions, job_id: str) -> str:
    return (
        f"https://console.cloud.google.com/vertex-ai/locations/{options.region}/training/"
        f"{job_id}?project={options.project}"
    )


def run_filter(label: str) -> str:
    """ListCustomJobs' filter for the run's job (AIP-160: `labels.<key>="<value>"`)."""
    return f'labels.{RUN_LABEL}="{label}"'


def _pool_spec(
    pool: WorkerPool, image: str, rendered: RenderedEntry, env: dict[str, str]
) -> dict[str, Any]:
    machine: dict[str, Any] = {"machine_type": pool.machine_type}
    if pool.accelerator_type:
        machine["accelerator_type"] = pool.accelerator_type
        machine["accelerator_count"] = pool.accelerator_count
    return {
        "machine_spec": machine,
        "replica_count": pool.replica_count,
        "disk_spec": {
            "boot_disk_type": pool.boot_disk_type,
            "boot_disk_size_gb": pool.boot_disk_size_gb,
        },
        "container_spec": {
            "image_uri": image,
            "command": list(rendered.command),
            "args": list(rendered.args),
            "env": [{"name": name, "value": value} for name, value in env.items()],
        },
    }


def custom_job_body(
    options: VertexOptions,
    custom_job: CustomJobOptions,
    entry: JobEntry,
    *,
    run_id: str,
    parameters: dict[str, Any],
    labels: dict[str, str],
    output_dir: str,
) -> dict[str, Any]:
    """The CustomJob resource (as the proto's field names) this run asks Vertex AI for; a `{name}`
    without a value is a PermanentError naming the argument (`job.args[2]`)."""
    if not entry.image:
        raise PermanentError(
            "job.image",
            "is not set, and Vertex AI runs the job in a container",
            "set `job.image` to the training image (`mlrelay validate` checks this)",
        )
    values = job_values(parameters, output_dir)
    rendered = render_entry(entry, values)
    mlrelay_env = {k: v for k, v in job_environment(values).items() if k not in _SET_BY_VERTEX}
    env = {**rendered.env, **mlrelay_env}  # the job's own values cannot hide mlrelay's
    pools = [_pool_spec(custom_job.worker_pools[0], entry.image, rendered, env)]
    for i, pool in enumerate(custom_job.worker_pools[1:], start=1):
        own = render_entry(
            JobEntry(
                image=pool.image or entry.image,
                command=pool.command or entry.command,
                args=entry.args if pool.args is None else pool.args,
                env=entry.env,
            ),
            values,
            at=f"custom_job.worker_pools[{i}]",
        )
        pools.append(_pool_spec(pool, pool.image or entry.image, own, env))
    spec: dict[str, Any] = {
        "worker_pool_specs": pools,
        "base_output_directory": {"output_uri_prefix": output_dir},
    }
    scheduling: dict[str, Any] = {}
    if custom_job.timeout:
        scheduling["timeout"] = {"seconds": duration_seconds(custom_job.timeout)}
    if custom_job.restart_job_on_worker_restart:
        scheduling["restart_job_on_worker_restart"] = True
    if custom_job.spot:
        scheduling["strategy"] = "SPOT"
    if scheduling:
        spec["scheduling"] = scheduling
    if options.service_account:
        spec["service_account"] = options.service_account
    if options.network:
        spec["network"] = options.network
    job: dict[str, Any] = {"display_name": run_id, "job_spec": spec, "labels": dict(labels)}
    if options.encryption_key_name:
        job["encryption_spec"] = {"kms_key_name": options.encryption_key_name}
    return job


class VertexCustomJobBackend:
    """Create the run's CustomJob (once, found by label); its end comes from the log relay or the
    watchdog (`job_state`)."""

    def __init__(
        self,
        options: VertexOptions,
        custom_job: CustomJobOptions,
        entry: JobEntry,
        output_dir: Callable[[str], str],
        lifecycle_topic: str,
        *,
        client: Any | None = None,
        retry_deadline_seconds: float = 60.0,
        endpoint: str = "",
        request_timeout_seconds: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.options = options
        self.custom_job = custom_job
        self.entry = entry
        self.output_dir = output_dir  # run id -> `jobs/<run_id>/` in mlrelay's bucket, as a URI
        self.lifecycle_topic = lifecycle_topic
        self.endpoint = endpoint
        self.request_timeout_seconds = request_timeout_seconds
        self.retry_deadline_seconds = retry_deadline_seconds
        self._client = client
        self._sleep = sleep

    @property
    def parent(self) -> str:
        return f"projects/{self.options.project}/locations/{self.options.region}"

    @property
    def client(self) -> Any:
        if self._client is None:
            from google.cloud.aiplatform_v1.services.job_service import JobServiceClient

            from mlrelay_deployer.vertex_clients import rest_client

            self._client = rest_client(JobServiceClient, self.options.region, self.endpoint)
        return self._client

    def completion_destination(self, run_id: str) -> str:
        return self.lifecycle_topic  # a job has no reporter: the relay and watchdog publish

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
        output_dir = self.output_dir(run_id)
        body = custom_job_body(
            self.options,
            self.custom_job,
            self.entry,
            run_id=run_id,
            parameters=parameters,
            labels=labels,
            output_dir=output_dir,
        )
        label = labels[RUN_LABEL]
        job, existed = self._find_or_create(run_id, label, body)
        name = str(job.name)
        links = {"console": console_url(self.options, name.rsplit("/", 1)[-1])}
        announce(links)
        log.info("custom_job_created", job=name, existed=existed)
        return PipelineOutcome(
            status="submitted",
            job_name=name,
            outputs={MODEL_OUTPUT: f"{output_dir}{MODEL_OUTPUT}/"},
            links=links,
            details={
                "already_existed": existed,
                "output_dir": output_dir,
                "image": self.entry.image,
            },
        )

    def _find_or_create(self, run_id: str, label: str, body: dict[str, Any]) -> tuple[Any, bool]:
        """The run's job: found by label, else created; a create that got no answer is followed
        by another look before any second create (backoff 1 s doubling, to the deadline)."""
        from google.api_core import exceptions

        transient = worth_retrying()
        deadline = time.monotonic() + self.retry_deadline_seconds
        wait = 1.0
        while True:
            try:
                found = self.find_job(label)
                if found is not None:
                    log.info("custom_job_exists", job=str(found.name))
                    return found, True
                created = self.client.create_custom_job(
                    request={"parent": self.parent, "custom_job": body},
                    retry=None,  # never blindly: the create may have happened (see the module)
                    timeout=self.request_timeout_seconds,
                )
                return created, False
            except transient as exc:
                if time.monotonic() + wait > deadline:
                    raise TransientError(f"Vertex AI did not take {run_id}: {exc}") from exc
                log.info("custom_job_create_retried", error=str(exc), wait=wait)
                self._sleep(wait)
                wait = min(wait * 2, 10.0)
            except (exceptions.PermissionDenied, exceptions.Unauthenticated) as exc:
                raise ConfigurationError(  # the deployer's IAM: redelivered until granted
                    "vertex",
                    f"Vertex AI refused CustomJob {run_id}: {exc.code} {exc.message}",
                    "grant the deployer's service account roles/aiplatform.user and actAs on the "
                    "job's service account (infra/)",
                ) from None
            except exceptions.GoogleAPICallError as exc:
                raise PermanentError(
                    "custom_job",
                    f"Vertex AI refused CustomJob {run_id}: {exc.code} {exc.message}",
                    "fix the registry's `job:`, `custom_job:` or `vertex:` options",
                ) from None

    def find_job(self, label: str) -> Any | None:
        """ListCustomJobs with the run's label: its job (the first created, should there be
        more), or None."""
        pager = self.client.list_custom_jobs(
            request={"parent": self.parent, "filter": run_filter(label)},
            retry=None,
            timeout=self.request_timeout_seconds,
        )
        jobs = [job for job in pager if dict(job.labels).get(RUN_LABEL) == label]
        jobs.sort(key=lambda job: (_time(job.create_time) or datetime.max, str(job.name)))
        return jobs[0] if jobs else None

    def job_name(self, run_id: str) -> str:
        """The run's job's resource name, looked up by its label ("" when it has none yet)."""
        from mlrelay_deployer.deploy import label_value

        try:
            job = self.find_job(label_value(run_id))
        except worth_retrying() as exc:
            raise TransientError(f"Vertex AI did not answer ListCustomJobs: {exc}") from exc
        return "" if job is None else str(job.name)

    def cancel(self, *, run_id: str, job_name: str, requested: dict[str, str]) -> str:
        """CancelCustomJob; FAILED_PRECONDITION for a job already finished (we then name its
        state), OK for one being cancelled."""
        from google.api_core import exceptions

        name = job_name or self.job_name(run_id)
        if not name:
            raise PermanentError(
                "run_id",
                f"Vertex AI has no custom job labelled {run_id}",
                "check the run id; only a run mlrelay submitted can be cancelled",
            )
        try:
            self.client.cancel_custom_job(
                request={"name": name}, timeout=self.request_timeout_seconds
            )
        except (exceptions.FailedPrecondition, exceptions.BadRequest) as exc:  # REST: 400
            job = self.read_job(name)
            state = "JOB_STATE_UNSPECIFIED" if job is None else _enum_name(job.state)
            if state in CANCELLED_STATES:  # our own earlier cancel, its answer lost
                return state
            raise PermanentError(
                "run_id",
                f"{run_id} is no longer running on Vertex AI ({state}): {exc.message}",
                "nothing to cancel; see the run's message for its outcome",
            ) from None
        except exceptions.NotFound:
            raise PermanentError(
                "run_id",
                f"Vertex AI has no CustomJob {name}",
                "check the run id; only a run mlrelay submitted can be cancelled",
            ) from None
        except (exceptions.PermissionDenied, exceptions.Unauthenticated) as exc:
            raise ConfigurationError(
                "vertex",
                f"Vertex AI refused to cancel {name}: {exc.code} {exc.message}",
                "grant the service account aiplatform.customJobs.cancel "
                "(roles/aiplatform.user; infra/)",
            ) from None
        except worth_retrying() as exc:
            raise TransientError(f"Vertex AI did not take the cancel of {name}: {exc}") from exc
        job = self.read_job(name)
        state = "JOB_STATE_UNSPECIFIED" if job is None else _enum_name(job.state)
        log.info("custom_job_cancel_requested", job=name, state=state)
        return state

    def read_job(self, name: str) -> Any | None:
        """GetCustomJob: the job resource, or None when Vertex AI has no such job."""
        from google.api_core import exceptions

        try:
            return self.client.get_custom_job(
                request={"name": name}, timeout=self.request_timeout_seconds
            )
        except exceptions.NotFound:
            return None
        except (exceptions.PermissionDenied, exceptions.Unauthenticated) as exc:
            raise ConfigurationError(
                "vertex",
                f"Vertex AI refused to read {name}: {exc.code} {exc.message}",
                "grant the service account aiplatform.customJobs.get "
                "(roles/aiplatform.viewer; infra/)",
            ) from None
        except worth_retrying() as exc:
            raise TransientError(f"Vertex AI did not answer GetCustomJob {name}: {exc}") from exc

    def job_state(self, *, run_id: str, job_name: str) -> JobState | None:
        """GetCustomJob on the run's job (looked up by label when the ledger has no name yet)."""
        name = job_name or self.job_name(run_id)
        job = self.read_job(name) if name else None
        return None if job is None else state_of_custom_job(job, self.options)


def state_of_custom_job(job: Any, options: VertexOptions) -> JobState:
    """A CustomJob resource (`aiplatform_v1.CustomJob`) as mlrelay's JobState."""
    state = _enum_name(job.state)
    error = str(job.error.message or "") if getattr(job, "error", None) else ""
    return JobState(
        state=state,
        status=STATUS_OF_STATE.get(state, "pending"),
        error=error or None,
        started_at=_time(getattr(job, "start_time", None)),
        ended_at=_time(getattr(job, "end_time", None)),
        links={"console": console_url(options, str(job.name).rsplit("/", 1)[-1])},
    )


def _enum_name(value: Any) -> str:
    return str(getattr(value, "name", value))


def _time(value: Any) -> datetime | None:
    """proto-plus gives a Timestamp as a datetime; an unset one as None or the epoch."""
    if not isinstance(value, datetime) or value.timestamp() <= 0:
        return None
    return value
