"""A loopback HTTP server that plays Vertex AI's PipelineService REST API (v1) for tests.

It keeps created PipelineJobs, answers a second create of the same job id with the service's real
409 ALREADY_EXISTS error body, records every request, and can be told to fail the next requests
with a given status (429, 503, 400...) to exercise retries and permanent errors.

`end_job` ends a job the way the service does when the pipeline's exit handler never runs (failed
at start, cancelled, a task killed) or when it succeeds, filling `jobDetail.taskDetails`,
`error`, `startTime` and `endTime`, and writes the LogEntry Cloud Logging records for it
(`log_entry`: the `aiplatform.googleapis.com/pipeline_job_events` log of the
`aiplatform.googleapis.com/PipelineJob` resource, in the LogEntry's JSON as a log sink publishes
it to Pub/Sub) to `log_sink`, when one is set (the tests publish it through the emulator).
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from .server import Answer, LoopbackFake, Request, json_answer
from .vertex_custom_jobs import FakeCustomJobs
from .vertex_models import FakeVertexModels

_JOBS = re.compile(r"^/v1/(projects/[^/]+/locations/[^/]+)/pipelineJobs$")
_JOB = re.compile(r"^/v1/(projects/[^/]+/locations/[^/]+/pipelineJobs/[^/:]+)$")
_CANCEL = re.compile(r"^/v1/(projects/[^/]+/locations/[^/]+/pipelineJobs/[^/:]+):cancel$")
FINISHED = ("PIPELINE_STATE_SUCCEEDED", "PIPELINE_STATE_FAILED", "PIPELINE_STATE_CANCELLED")
_STATUS = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
           409: "ALREADY_EXISTS", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL",
           503: "UNAVAILABLE"}  # fmt: skip
JSON = "application/json; charset=UTF-8"
LOG = "aiplatform.googleapis.com%2Fpipeline_job_events"
PROJECT_NUMBER = "123456789012"
Ending = Literal["succeeded", "failed_at_start", "cancelled", "task_killed"]
QUOTA = "Quota exceeded for aiplatform.googleapis.com/custom_model_training_cpus: 8 of 4 in use."
KILLED = "The replica workerpool0-0 exited with a non-zero status of 137 (killed: out of memory)."


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


@dataclass
class FakeVertex(LoopbackFake):
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    failures: deque[tuple[int, str]] = field(default_factory=deque)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # (LogEntry JSON, Pub/Sub attributes) -> published, as the log sink does; None: not routed
    log_sink: Callable[[bytes, dict[str, str]], None] | None = None
    models: FakeVertexModels = field(default_factory=FakeVertexModels)  # registry, endpoints
    custom_jobs: FakeCustomJobs = field(default_factory=FakeCustomJobs)  # JobService's CustomJobs
    methods = ("GET", "POST", "PATCH")  # PATCH: UpdateEndpoint

    @property
    def endpoint(self) -> str:
        return self.url

    @property
    def requests(self) -> list[Recorded]:
        return [
            Recorded(r.method, r.path, r.query, r.headers, r.json())
            for r in (e.request for e in self.server.recorded())
        ]

    def fail_next(self, status: int, message: str, times: int = 1) -> None:
        for _ in range(times):
            self.failures.append((status, message))

    def creates(self) -> list[Recorded]:
        return [r for r in self.requests if r.method == "POST" and _JOBS.match(r.path)]

    def cancels(self) -> list[Recorded]:
        return [r for r in self.requests if r.method == "POST" and _CANCEL.match(r.path)]

    def set_state(self, name: str, state: str) -> None:
        """Move a job on (RUNNING, SUCCEEDED...), as the service would while it runs."""
        with self.lock:
            self.jobs[name]["state"] = state

    def finish_cancelling(self) -> None:
        """What the service does a little after a cancel: CANCELLING jobs become CANCELLED."""
        with self.lock:
            for job in self.jobs.values():
                if job["state"] == "PIPELINE_STATE_CANCELLING":
                    job["state"] = "PIPELINE_STATE_CANCELLED"

    def add_job(self, name: str, labels: dict[str, str] | None = None) -> None:
        """A job created some other way (by hand in the console, another tool): not via mlrelay."""
        with self.lock:
            self.jobs[name] = {"name": name, "displayName": name.rsplit("/", 1)[1],
                               "labels": dict(labels or {}), "state": "PIPELINE_STATE_RUNNING",
                               "createTime": "2026-11-25T06:00:01.000000Z"}  # fmt: skip

    def end_job(
        self, name: str, how: Ending, *, task: str = "train", at: datetime | None = None
    ) -> dict[str, Any]:
        """End the job `how`, as the service records it, and write its LogEntry to the sink."""
        ended = at or datetime(2026, 11, 25, 6, 30, tzinfo=UTC)
        started = ended - timedelta(minutes=20)
        root = {"taskId": "1", "taskName": "root", "createTime": _ts(started)}
        tasks: list[dict[str, Any]] = []
        error: dict[str, Any] | None = None
        if how == "succeeded":
            state = "PIPELINE_STATE_SUCCEEDED"
            tasks = [{**root, "state": "SUCCEEDED"}, _task("2", "1", task, "SUCCEEDED")]
        elif how == "failed_at_start":  # quota, image pull, a bad spec: no task ever ran
            state, error = "PIPELINE_STATE_FAILED", {"code": 8, "message": QUOTA}
        elif how == "cancelled":
            state = "PIPELINE_STATE_CANCELLED"
            error = {"code": 1, "message": "The pipeline job was cancelled."}
            tasks = [{**root, "state": "CANCELLED"}, _task("2", "1", task, "CANCELLED")]
        else:  # a task killed (OOM, preemption): the exit handler's group never ran
            state = "PIPELINE_STATE_FAILED"
            error = {"code": 9, "message": f"The DAG failed because some tasks failed. "
                                           f"The failed tasks are: [{task}]."}  # fmt: skip
            tasks = [
                {**root, "state": "FAILED"},
                _task("2", "1", "exit-handler-1", "FAILED"),
                {**_task("3", "2", task, "FAILED"), "error": {"code": 9, "message": KILLED}},
            ]  # fmt: skip
        with self.lock:
            job = self.jobs[name]
            job["state"] = state
            job["endTime"] = _ts(ended)
            if how != "failed_at_start":
                job["startTime"] = _ts(started)
            if error is not None:
                job["error"] = error
            if tasks:
                job["jobDetail"] = {"taskDetails": tasks}
            snapshot = json.loads(json.dumps(job))
        entry = self.log_entry(name, state, at=ended)
        if self.log_sink is not None:
            self.log_sink(
                json.dumps(entry).encode(), {"logging.googleapis.com/timestamp": entry["timestamp"]}
            )
        return snapshot

    def log_entry(self, name: str, state: str, *, at: datetime | None = None) -> dict[str, Any]:
        """The LogEntry Cloud Logging writes when job `name` reaches `state`, as its sink
        publishes it (LogEntry fields as Google's reference names them, camelCase JSON)."""
        match = re.fullmatch(r"projects/([^/]+)/locations/([^/]+)/pipelineJobs/([^/]+)", name)
        assert match, name
        project, location, job_id = match.groups()
        when = at or datetime.now(UTC)
        return {
            "insertId": uuid.uuid4().hex[:12],
            "jsonPayload": {
                "@type": "type.googleapis.com/google.cloud.aiplatform.logging.PipelineJobLogEntry",
                "pipelineJobId": job_id,
                "state": state,
                "message": f"Pipeline job {job_id} changed state to {state}.",
            },
            "resource": {
                "type": "aiplatform.googleapis.com/PipelineJob",
                "labels": {
                    "resource_container": f"projects/{PROJECT_NUMBER}",
                    "location": location,
                    "pipeline_job_id": job_id,
                },
            },
            "timestamp": _ts(when),
            "severity": "ERROR" if state == "PIPELINE_STATE_FAILED" else "INFO",
            "logName": f"projects/{project}/logs/{LOG}",
            "receiveTimestamp": _ts(when + timedelta(milliseconds=250)),
        }

    def reset(self) -> None:
        with self.lock:
            self.jobs.clear()
            self.server.clear()
            self.failures.clear()
        self.models.reset()
        self.custom_jobs.reset()

    def answer(self, request: Request) -> Answer:
        if (answered := self.models.answer(request)) is not None:
            return answered

        if (custom_job := self.custom_jobs.answer(request, self)) is not None:
            return custom_job
        if request.method == "POST" and _CANCEL.match(request.path):
            return self._cancel(request)
        if request.method == "POST":
            return self._create(request)
        match = _JOB.match(request.path)
        with self.lock:
            job = self.jobs.get(match.group(1)) if match else None
        if job is None:
            return error(404, f"{request.path} not found")
        return json_answer(200, job, JSON)

    def _create(self, request: Request) -> Answer:
        with self.lock:
            failure = self.failures.popleft() if self.failures else None
        if failure:
            return error(*failure)
        match, body = _JOBS.match(request.path), request.json()
        if not match or not isinstance(body, dict):
            return error(404, f"no such method: POST {request.path}")
        job_id = request.query.get("pipelineJobId", ["generated-1"])[0]
        name = f"{match.group(1)}/pipelineJobs/{job_id}"
        with self.lock:
            if name in self.jobs:
                return error(409, f"PipelineJob {name} already exists.")
            job = {
                **body,
                "name": name,
                "state": "PIPELINE_STATE_PENDING",
                "createTime": "2026-11-25T06:00:01.000000Z",
            }
            self.jobs[name] = job
        return json_answer(200, job, JSON)

    def _cancel(self, request: Request) -> Answer:
        """CancelPipelineJob: a pending or running job becomes CANCELLING (a second cancel of it
        is OK, as on the service); a finished one is FAILED_PRECONDITION (HTTP 400)."""
        with self.lock:
            failure = self.failures.popleft() if self.failures else None
            if failure:
                return error(*failure)
            match = _CANCEL.match(request.path)
            job = self.jobs.get(match.group(1)) if match else None
            if job is None:
                return error(404, f"{request.path} not found")
            if job["state"] in FINISHED:
                return json_answer(
                    400,
                    {"error": {"code": 400, "status": "FAILED_PRECONDITION",
                               "message": f"Cannot cancel a job in state {job['state']}."}},
                    JSON,
                )  # fmt: skip
            job["state"] = "PIPELINE_STATE_CANCELLING"
        return json_answer(200, {}, JSON)


def _task(task_id: str, parent: str, name: str, state: str) -> dict[str, Any]:
    return {"taskId": task_id, "parentTaskId": parent, "taskName": name, "state": state}


def _ts(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def error_body(status: int, message: str) -> dict[str, Any]:
    return {"error": {"code": status, "message": message, "status": _STATUS.get(status, "UNKNOWN")}}


def error(status: int, message: str) -> Answer:
    return json_answer(status, error_body(status, message), JSON)
