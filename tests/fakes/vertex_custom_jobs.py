"""Vertex AI's custom jobs (JobService REST v1) in the loopback Vertex AI (tests/fakes/vertex.py):
`FakeVertex.custom_jobs`, answered from `FakeVertex.answer`.

As on the service: CreateCustomJob assigns the job's numeric id and names it with the project
NUMBER (`projects/123456789012/locations/<l>/customJobs/<id>`), whatever the parent said;
ListCustomJobs takes AIP-160 filters of the form `labels.<key>="<value>"` (joined by AND);
GetCustomJob and CancelCustomJob take the name with the project's number or id. A cancel moves a
pending or running job to CANCELLING (again: OK), a finished one is FAILED_PRECONDITION (400).

`end_job` ends a job SUCCEEDED / FAILED / CANCELLED with its error, start and end times, and
writes the LogEntry Cloud Logging records for the end to the FakeVertex's `log_sink` (when set):
the service's own line (`resource.labels.task_name` "service") in the job's log
`projects/<p>/logs/ml.googleapis.com%2F<job_id>` of the monitored resource `ml_job` (labels
`job_id`, `project_id`, `task_name`). See docs/custom-jobs.md for how sure that shape is.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from .server import Answer, Request, json_answer

if TYPE_CHECKING:
    from .vertex import FakeVertex

JSON = "application/json; charset=UTF-8"
PROJECT_NUMBER = "123456789012"
_JOBS = re.compile(r"^/v1/projects/([^/]+)/locations/([^/]+)/customJobs$")
_JOB = re.compile(r"^/v1/projects/([^/]+)/locations/([^/]+)/customJobs/([0-9]+)$")
_CANCEL = re.compile(r"^/v1/projects/([^/]+)/locations/([^/]+)/customJobs/([0-9]+):cancel$")
_LABEL = re.compile(r'^labels\.([a-z0-9_-]+)\s*=\s*"([^"]*)"$')
FINISHED = ("JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED")
CustomJobEnding = Literal["succeeded", "failed", "cancelled", "preempted"]
OOM = (
    "The replica workerpool0-0 exited with a non-zero status of 137. Termination reason: OOMKilled."
)
PREEMPTED = "The replica workerpool0-0 was preempted (Spot VM reclaimed); the job was not retried."
# the service's own last line of a job, by ending (see docs/custom-jobs.md)
SERVICE_LINE = {
    "JOB_STATE_SUCCEEDED": "Job completed successfully.",
    "JOB_STATE_FAILED": "Job failed.",
    "JOB_STATE_CANCELLED": "Job was cancelled.",
}


@dataclass
class FakeCustomJobs:
    jobs: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # (location, id)
    projects: dict[tuple[str, str], str] = field(default_factory=dict)  # the creator's project id
    lock: threading.Lock = field(default_factory=threading.Lock)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(4821937465120))
    owner: FakeVertex | None = None  # the FakeVertex answering for it (its failures, log sink)

    def reset(self) -> None:
        with self.lock:
            self.jobs.clear()
            self.projects.clear()

    def answer(self, request: Request, owner: FakeVertex) -> Answer | None:
        """The answer to a custom-job request; None for any other path (the FakeVertex's)."""
        path = request.path
        if not (_JOBS.match(path) or _JOB.match(path) or _CANCEL.match(path)):
            return None
        self.owner = owner
        with owner.lock:
            failure = owner.failures.popleft() if owner.failures else None
        if failure:
            from .vertex import error

            return error(*failure)
        if request.method == "POST" and (match := _JOBS.match(path)):
            return self._create(match.group(1), match.group(2), request.json())
        if request.method == "POST" and (match := _CANCEL.match(path)):
            return self._cancel(match.group(2), match.group(3))
        if request.method == "GET" and (match := _JOBS.match(path)):
            return self._list(match.group(2), request.query.get("filter", [""])[0])
        if request.method == "GET" and (match := _JOB.match(path)):
            with self.lock:
                job = self.jobs.get((match.group(2), match.group(3)))
            return _error(404, f"{path} not found") if job is None else json_answer(200, job, JSON)
        return _error(404, f"no such method: {request.method} {path}")

    def creates(self, owner: FakeVertex) -> list[Any]:
        return [r for r in owner.requests if r.method == "POST" and _JOBS.match(r.path)]

    def lists(self, owner: FakeVertex) -> list[Any]:
        return [r for r in owner.requests if r.method == "GET" and _JOBS.match(r.path)]

    def cancels(self, owner: FakeVertex) -> list[Any]:
        return [r for r in owner.requests if r.method == "POST" and _CANCEL.match(r.path)]

    def names(self) -> list[str]:
        with self.lock:
            return [str(job["name"]) for job in self.jobs.values()]

    def job(self, name: str) -> dict[str, Any]:
        with self.lock:
            return json.loads(json.dumps(self.jobs[_key(name)]))

    def set_state(self, name: str, state: str, *, at: datetime | None = None) -> None:
        with self.lock:
            job = self.jobs[_key(name)]
            job["state"] = state
            if state == "JOB_STATE_RUNNING":
                job["startTime"] = _ts(at or datetime(2026, 11, 25, 6, 10, tzinfo=UTC))

    def finish_cancelling(self) -> None:
        """What the service does a little after a cancel: CANCELLING jobs become CANCELLED."""
        for name in self.names():
            if self.job(name)["state"] == "JOB_STATE_CANCELLING":
                self.end_job(name, "cancelled")

    def end_job(
        self, name: str, how: CustomJobEnding, *, at: datetime | None = None, log: bool = True
    ) -> dict[str, Any]:
        """End the job `how`, as the service records it; with `log`, its LogEntry to the sink."""
        ended = at or datetime(2026, 11, 25, 6, 30, tzinfo=UTC)
        error: dict[str, Any] | None = None
        if how == "succeeded":
            state = "JOB_STATE_SUCCEEDED"
        elif how == "failed":
            state, error = "JOB_STATE_FAILED", {"code": 3, "message": OOM}
        elif how == "preempted":
            state, error = "JOB_STATE_FAILED", {"code": 14, "message": PREEMPTED}
        else:
            state = "JOB_STATE_CANCELLED"
            error = {"code": 1, "message": "CANCELED"}
        with self.lock:
            job = self.jobs[_key(name)]
            job["state"] = state
            job.setdefault("startTime", _ts(ended - timedelta(minutes=20)))
            job["endTime"] = _ts(ended)
            job["updateTime"] = _ts(ended)
            if error is not None:
                job["error"] = error
            snapshot = json.loads(json.dumps(job))
        sink = self.owner.log_sink if self.owner is not None else None
        if log and sink is not None:
            entry = self.log_entry(name, state, project=self.projects[_key(name)], at=ended)
            sink(
                json.dumps(entry).encode(), {"logging.googleapis.com/timestamp": entry["timestamp"]}
            )
        return snapshot

    def log_entry(
        self, name: str, state: str, *, project: str = "test-proj", at: datetime | None = None
    ) -> dict[str, Any]:
        """The service's LogEntry when job `name` reaches `state`, as a log sink publishes it."""
        job_id = name.rsplit("/", 1)[1]
        when = at or datetime.now(UTC)
        return {
            "insertId": uuid.uuid4().hex[:14],
            "textPayload": SERVICE_LINE[state],
            "resource": {
                "type": "ml_job",
                "labels": {"job_id": job_id, "project_id": project, "task_name": "service"},
            },
            "timestamp": _ts(when),
            "severity": "ERROR" if state == "JOB_STATE_FAILED" else "INFO",
            "logName": f"projects/{project}/logs/ml.googleapis.com%2F{job_id}",
            "receiveTimestamp": _ts(when + timedelta(milliseconds=400)),
        }

    def _create(self, project: str, location: str, body: Any) -> Answer:
        if not isinstance(body, dict) or not body.get("jobSpec", {}).get("workerPoolSpecs"):
            return _error(400, "CustomJob.job_spec.worker_pool_specs is required.")
        job_id = str(next(self.ids))
        job = {
            **body,
            "name": f"projects/{PROJECT_NUMBER}/locations/{location}/customJobs/{job_id}",
            "state": "JOB_STATE_PENDING",
            "createTime": _ts(datetime(2026, 11, 25, 6, 0, 1, tzinfo=UTC)),
            "updateTime": _ts(datetime(2026, 11, 25, 6, 0, 1, tzinfo=UTC)),
        }
        with self.lock:
            self.jobs[(location, job_id)] = job
            self.projects[(location, job_id)] = project
        return json_answer(200, job, JSON)

    def _list(self, location: str, filter_text: str) -> Answer:
        wanted: list[tuple[str, str]] = []
        for term in (t.strip() for t in re.split(r"\s+AND\s+", filter_text) if t.strip()):
            match = _LABEL.match(term)
            if match is None:
                return _error(400, f"Unsupported filter: {term}")
            wanted.append((match.group(1), match.group(2)))
        with self.lock:
            found = [
                job
                for (where, _), job in self.jobs.items()
                if where == location
                and all(job.get("labels", {}).get(key) == value for key, value in wanted)
            ]
        return json_answer(200, {"customJobs": found} if found else {}, JSON)

    def _cancel(self, location: str, job_id: str) -> Answer:
        with self.lock:
            job = self.jobs.get((location, job_id))
            if job is None:
                return _error(404, f"CustomJob {job_id} not found")
            if job["state"] in FINISHED:
                return json_answer(
                    400,
                    {"error": {"code": 400, "status": "FAILED_PRECONDITION",
                               "message": f"Cannot cancel a job in state {job['state']}."}},
                    JSON,
                )  # fmt: skip
            job["state"] = "JOB_STATE_CANCELLING"
        return json_answer(200, {}, JSON)


def _key(name: str) -> tuple[str, str]:
    match = re.fullmatch(r"projects/[^/]+/locations/([^/]+)/customJobs/([0-9]+)", name)
    assert match, name
    return match.group(1), match.group(2)


def _ts(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _error(status: int, message: str) -> Answer:
    from .vertex import error

    return error(status, message)
