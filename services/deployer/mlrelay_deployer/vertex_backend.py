"""Vertex AI Pipelines: one PipelineJob per run, created with the low-level `aiplatform_v1` client.

The job id is the run id, so a redelivered DeployRequest gets ALREADY_EXISTS, which is success.
`google.cloud.aiplatform_v1` is imported on first use only (about 0.7 s): the deployer's cold
start does not pay for it unless a pipeline uses this backend.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

import structlog

from mlrelay.errors import ConfigurationError, PermanentError, TransientError
from mlrelay.ports.protocols import JobState, PipelineOutcome
from mlrelay.registry.backends import VertexOptions
from mlrelay_deployer.template_source import PipelineTemplate, load_template, with_caching

log = structlog.get_logger()
CANCELLED_STATES = ("PIPELINE_STATE_CANCELLING", "PIPELINE_STATE_CANCELLED")
JobStatus = Literal["running", "pending", "succeeded", "failed", "cancelled"]
# PipelineState -> mlrelay's word (CANCELLING is not an end yet: its CANCELLED follows)
STATUS_OF_STATE: dict[str, JobStatus] = {
    "PIPELINE_STATE_UNSPECIFIED": "pending",
    "PIPELINE_STATE_QUEUED": "pending",
    "PIPELINE_STATE_PENDING": "pending",
    "PIPELINE_STATE_RUNNING": "running",
    "PIPELINE_STATE_PAUSED": "running",
    "PIPELINE_STATE_CANCELLING": "running",
    "PIPELINE_STATE_SUCCEEDED": "succeeded",
    "PIPELINE_STATE_FAILED": "failed",
    "PIPELINE_STATE_CANCELLED": "cancelled",
}


def worth_retrying() -> tuple[type[Exception], ...]:
    """Vertex AI's answers worth another try: throttled, a server error, or no answer in time /
    a dropped connection (the REST transport raises requests' own exceptions for those)."""
    import requests  # type: ignore[import-untyped,unused-ignore]
    from google.api_core import exceptions

    return (
        exceptions.TooManyRequests,
        exceptions.InternalServerError,
        exceptions.BadGateway,
        exceptions.ServiceUnavailable,
        exceptions.GatewayTimeout,
        requests.exceptions.Timeout,
        requests.exceptions.ConnectionError,
    )


def console_url(options: VertexOptions, job_id: str) -> str:
    return (
        f"https://console.cloud.google.com/vertex-ai/locations/{options.region}/pipelines/runs/"
        f"{job_id}?project={options.project}"
    )


def pipeline_job_body(
    options: VertexOptions,
    *,
    run_id: str,
    template: PipelineTemplate,
    parameters: dict[str, Any],
    labels: dict[str, str],
) -> dict[str, Any]:
    """The PipelineJob resource (as the proto's field names) this run asks Vertex AI for."""
    runtime_config: dict[str, Any] = {"parameter_values": dict(parameters)}
    if options.pipeline_root:
        runtime_config["gcs_output_directory"] = options.pipeline_root
    job: dict[str, Any] = {
        "display_name": run_id,
        "pipeline_spec": with_caching(template.spec, options.enable_caching),
        "runtime_config": runtime_config,
        "labels": dict(labels),
    }
    if template.registry_uri:
        job["template_uri"] = template.registry_uri
    if options.service_account:
        job["service_account"] = options.service_account
    if options.network:
        job["network"] = options.network
    if options.encryption_key_name:
        job["encryption_spec"] = {"kms_key_name": options.encryption_key_name}
    return job


class VertexPipelineBackend:
    """Create the run's PipelineJob; completion comes later from the pipeline's exit handler."""

    def __init__(
        self,
        options: VertexOptions,
        lifecycle_topic: str,
        *,
        client: Any | None = None,
        retry_deadline_seconds: float = 60.0,
        endpoint: str = "",
        request_timeout_seconds: float = 30.0,
    ) -> None:
        self.options = options
        self.endpoint = endpoint
        self.request_timeout_seconds = request_timeout_seconds  # one request, then a retry
        self.lifecycle_topic = lifecycle_topic
        self._client = client
        self.retry_deadline_seconds = retry_deadline_seconds

    @property
    def client(self) -> Any:
        if self._client is None:
            from google.cloud.aiplatform_v1.services.pipeline_service import (
                PipelineServiceClient,
            )

            from mlrelay_deployer.vertex_clients import rest_client

            self._client = rest_client(PipelineServiceClient, self.options.region, self.endpoint)
        return self._client

    def completion_destination(self, run_id: str) -> str:
        return self.lifecycle_topic

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
        from google.api_core import exceptions
        from google.api_core import retry as retries

        loaded = load_template(template)
        parent = f"projects/{self.options.project}/locations/{self.options.region}"
        body = pipeline_job_body(
            self.options,
            run_id=run_id,
            template=loaded,
            parameters=parameters,
            labels=labels,
        )
        # a retried create of an existing job is ALREADY_EXISTS: success
        transient = worth_retrying()
        retry = retries.Retry(
            predicate=retries.if_exception_type(*transient),
            initial=1.0,
            maximum=10.0,
            multiplier=2.0,
            timeout=self.retry_deadline_seconds,
        )
        existed = False
        try:
            self.client.create_pipeline_job(
                request={"parent": parent, "pipeline_job": body, "pipeline_job_id": run_id},
                retry=retry,
                timeout=self.request_timeout_seconds,
            )
        except exceptions.Conflict as exc:
            if not _already_exists(exc):
                raise TransientError(f"Vertex AI answered 409 for {run_id}: {exc.message}") from exc
            existed = True
            log.info("pipeline_job_exists", job_id=run_id)
        except exceptions.RetryError as exc:
            raise TransientError(f"Vertex AI did not take {run_id}: {exc}") from exc
        except transient as exc:
            raise TransientError(f"Vertex AI did not take {run_id}: {exc}") from exc
        except (exceptions.Forbidden, exceptions.Unauthorized) as exc:  # REST: 403, 401
            raise ConfigurationError(  # the deployer's IAM: redelivered until it is granted
                "vertex",
                f"Vertex AI refused PipelineJob {run_id}: {exc.code} {exc.message}",
                "grant the deployer's service account roles/aiplatform.user and actAs on the "
                "pipeline service account (infra/)",
            ) from None
        except exceptions.GoogleAPICallError as exc:
            raise PermanentError(
                "vertex",
                f"Vertex AI refused PipelineJob {run_id}: {exc.code} {exc.message}",
                "fix the registry's `vertex:` options, the template or the deployer's IAM roles",
            ) from None
        job_name = f"{parent}/pipelineJobs/{run_id}"
        links = {"console": console_url(self.options, run_id)}
        announce(links)
        log.info("pipeline_job_created", job=job_name, existed=existed)
        return PipelineOutcome(
            status="submitted",
            job_name=job_name,
            links=links,
            details={
                "template": loaded.pinned_uri,
                "template_sha256": loaded.sha256,
                "already_existed": existed,
            },
        )

    def cancel(self, *, run_id: str, job_name: str, requested: dict[str, str]) -> str:
        """CancelPipelineJob on the job `start` created; Vertex AI answers FAILED_PRECONDITION
        for a job already finished (we then name its state), OK for one being cancelled."""
        from google.api_core import exceptions

        name = job_name or (
            f"projects/{self.options.project}/locations/{self.options.region}/pipelineJobs/{run_id}"
        )
        try:
            self.client.cancel_pipeline_job(
                request={"name": name}, timeout=self.request_timeout_seconds
            )
        except (exceptions.FailedPrecondition, exceptions.BadRequest) as exc:  # REST: 400
            state = self._state(name)
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
                f"Vertex AI has no PipelineJob {name}",
                "check the run id; only a run mlrelay submitted can be cancelled",
            ) from None
        except (exceptions.Forbidden, exceptions.Unauthorized) as exc:  # REST: 403, 401
            raise ConfigurationError(
                "vertex",
                f"Vertex AI refused to cancel {name}: {exc.code} {exc.message}",
                "grant the deployer's service account aiplatform.pipelineJobs.cancel "
                "(roles/aiplatform.user; infra/)",
            ) from None
        except worth_retrying() as exc:
            raise TransientError(f"Vertex AI did not take the cancel of {name}: {exc}") from exc
        state = self._state(name)
        log.info("pipeline_job_cancel_requested", job=name, state=state)
        return state

    def job_name(self, run_id: str) -> str:
        """The resource name of the job `start` creates for `run_id` (its id is the run id)."""
        return (
            f"projects/{self.options.project}/locations/{self.options.region}/pipelineJobs/{run_id}"
        )

    def read_job(self, name: str) -> Any | None:
        """GetPipelineJob: the job resource, or None when Vertex AI has no such job."""
        from google.api_core import exceptions

        try:
            return self.client.get_pipeline_job(
                request={"name": name}, timeout=self.request_timeout_seconds
            )
        except exceptions.NotFound:
            return None
        except (exceptions.Forbidden, exceptions.Unauthorized) as exc:  # REST: 403, 401
            raise ConfigurationError(
                "vertex",
                f"Vertex AI refused to read {name}: {exc.code} {exc.message}",
                "grant the service account aiplatform.pipelineJobs.get "
                "(roles/aiplatform.viewer; infra/)",
            ) from None
        except worth_retrying() as exc:
            raise TransientError(f"Vertex AI did not answer GetPipelineJob {name}: {exc}") from exc

    def job_state(self, *, run_id: str, job_name: str) -> JobState | None:
        """GetPipelineJob on the run's job: its state, failed task and error, times, link."""
        job = self.read_job(job_name or self.job_name(run_id))
        return None if job is None else state_of_job(job, self.options)

    def _state(self, name: str) -> str:
        from google.api_core import exceptions

        try:
            job = self.client.get_pipeline_job(
                request={"name": name}, timeout=self.request_timeout_seconds
            )
        except exceptions.GoogleAPICallError:
            return "PIPELINE_STATE_UNSPECIFIED"
        return str(getattr(job.state, "name", job.state))


def state_of_job(job: Any, options: VertexOptions) -> JobState:
    """A PipelineJob resource (`aiplatform_v1.PipelineJob`) as mlrelay's JobState."""
    state = _enum_name(job.state)
    failed = failed_task_of(job)
    # the failed task's own error says why ("exited with status 137"); the job's only that it did
    error = (failed[1] if failed else "") or str(job.error.message or "") or None
    job_id = str(job.name).rsplit("/", 1)[-1]
    return JobState(
        state=state,
        status=STATUS_OF_STATE.get(state, "pending"),
        failed_task=failed[0] if failed else None,
        error=error,
        started_at=_time(getattr(job, "start_time", None)),
        ended_at=_time(getattr(job, "end_time", None)),
        links={"console": console_url(options, job_id)},
    )


def failed_task_of(job: Any) -> tuple[str, str] | None:
    """(name, error) of the task that failed (`job_detail.task_details`): the innermost one, not
    the pipeline's root DAG or the exit handler's group, which fail because it did."""
    detail = getattr(job, "job_detail", None)
    tasks = list(getattr(detail, "task_details", None) or [])
    failed = [t for t in tasks if _enum_name(t.state) == "FAILED"]
    inner = [
        t for t in failed if t.parent_task_id and not str(t.task_name).startswith("exit-handler")
    ]
    for task in inner or failed:
        message = str(task.error.message) if task.error and task.error.message else ""
        return str(task.task_name), message
    return None


def _enum_name(value: Any) -> str:
    return str(getattr(value, "name", value))


def _time(value: Any) -> datetime | None:
    """proto-plus gives a Timestamp as a datetime; an unset one as None or the epoch."""
    if not isinstance(value, datetime) or value.timestamp() <= 0:
        return None
    return value


def _already_exists(exc: Any) -> bool:
    response = getattr(exc, "response", None)
    try:
        status = response.json().get("error", {}).get("status") if response is not None else None
    except ValueError:
        status = None
    return status == "ALREADY_EXISTS" or "already exists" in str(exc.message).lower()
