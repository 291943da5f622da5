"""The `SchedulerJobs` port on Google Cloud Scheduler (official client, REST transport).

Transient answers (429, 500, 503, timeouts) are retried with exponential backoff by the client's
own retry machinery; 409 and 404 become `JobExists` / `JobMissing` for the plan to handle; any
other refusal is a `PermanentError` naming the job.
"""

from __future__ import annotations

import importlib
from typing import Any

from mlrelay.errors import PermanentError, TransientError
from mlrelay_tools.schedules.jobs import JobSpec
from mlrelay_tools.schedules.sync import JobExists, JobMissing


class CloudSchedulerJobs:
    def __init__(
        self,
        project: str,
        location: str,
        *,
        endpoint: str | None = None,
        initial_backoff: float = 1.0,
        retry_timeout: float = 120.0,
    ) -> None:
        from google.api_core import exceptions, retry

        # imported by name: the typed scheduler package would hide the untyped google.cloud
        # packages next to it from mypy
        scheduler_v1 = importlib.import_module("google.cloud.scheduler_v1")

        options: dict[str, Any] = {}
        credentials = None
        if endpoint:  # a loopback stand-in: no Google credentials involved
            from google.auth.credentials import AnonymousCredentials

            options["api_endpoint"] = endpoint
            credentials = AnonymousCredentials()  # type: ignore[no-untyped-call]
        self.client = scheduler_v1.CloudSchedulerClient(
            transport="rest", client_options=options, credentials=credentials
        )
        self.types = scheduler_v1
        self.parent = f"projects/{project}/locations/{location}"
        self.retry = retry.Retry(
            predicate=retry.if_exception_type(
                exceptions.TooManyRequests,
                exceptions.ResourceExhausted,
                exceptions.InternalServerError,
                exceptions.ServiceUnavailable,
                exceptions.GatewayTimeout,
                exceptions.DeadlineExceeded,
            ),
            initial=initial_backoff,
            maximum=max(initial_backoff, 32.0),
            multiplier=2.0,
            timeout=retry_timeout,
        )

    def _name(self, job_id: str) -> str:
        return f"{self.parent}/jobs/{job_id}"

    def _to_job(self, spec: JobSpec) -> Any:
        return self.types.Job(
            name=self._name(spec.job_id),
            description=spec.description,
            schedule=spec.schedule,
            time_zone=spec.time_zone,
            pubsub_target=self.types.PubsubTarget(
                topic_name=spec.topic_name, data=spec.data, attributes=spec.attributes
            ),
        )

    def _call(self, what: str, job_id: str, method: Any, **kwargs: Any) -> Any:
        from google.api_core import exceptions

        try:
            return method(**kwargs, retry=self.retry)
        except exceptions.Conflict:  # 409: ALREADY_EXISTS
            raise JobExists(job_id) from None
        except exceptions.NotFound:
            raise JobMissing(job_id) from None
        except exceptions.RetryError as exc:
            raise TransientError(f"Cloud Scheduler kept failing to {what} {job_id}: {exc}") from exc
        except exceptions.GoogleAPICallError as exc:
            raise PermanentError(
                f"job {job_id}",
                f"Cloud Scheduler refused to {what} it: {exc.message}",
                "check the project, location and roles/cloudscheduler.admin",
            ) from None

    def list_jobs(self) -> list[JobSpec]:
        pages = self._call(
            "list", self.parent, self.client.list_jobs, request={"parent": self.parent}
        )
        found = []
        for job in pages:
            target = job.pubsub_target
            found.append(
                JobSpec(
                    job_id=job.name.rsplit("/", 1)[1],
                    schedule=job.schedule,
                    time_zone=job.time_zone,
                    description=job.description,
                    topic_name=target.topic_name,
                    data=bytes(target.data),
                    attributes=dict(target.attributes),
                    paused=job.state == self.types.Job.State.PAUSED,
                )
            )
        return found

    def create(self, job: JobSpec) -> None:
        self._call(
            "create",
            job.job_id,
            self.client.create_job,
            request={"parent": self.parent, "job": self._to_job(job)},
        )

    def update(self, job: JobSpec, fields: list[str]) -> None:
        from google.protobuf import field_mask_pb2

        self._call(
            "update",
            job.job_id,
            self.client.update_job,
            request={
                "job": self._to_job(job),
                "update_mask": field_mask_pb2.FieldMask(paths=fields),
            },
        )

    def pause(self, job_id: str) -> None:
        self._call("pause", job_id, self.client.pause_job, request={"name": self._name(job_id)})

    def resume(self, job_id: str) -> None:
        self._call("resume", job_id, self.client.resume_job, request={"name": self._name(job_id)})

    def delete(self, job_id: str) -> None:
        self._call("delete", job_id, self.client.delete_job, request={"name": self._name(job_id)})
