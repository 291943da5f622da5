"""A loopback HTTP server that plays Vertex AI's PipelineService REST API (v1) for tests.

It keeps created PipelineJobs, answers a second create of the same job id with the service's real
409 ALREADY_EXISTS error body, records every request, and can be told to fail the next requests
with a given status (429, 503, 400...) to exercise retries and permanent errors.
"""

from __future__ import annotations

import re
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from .server import Answer, LoopbackFake, Request, json_answer

_JOBS = re.compile(r"^/v1/(projects/[^/]+/locations/[^/]+)/pipelineJobs$")
_JOB = re.compile(r"^/v1/(projects/[^/]+/locations/[^/]+/pipelineJobs/[^/:]+)$")
_CANCEL = re.compile(r"^/v1/(projects/[^/]+/locations/[^/]+/pipelineJobs/[^/:]+):cancel$")
FINISHED = ("PIPELINE_STATE_SUCCEEDED", "PIPELINE_STATE_FAILED", "PIPELINE_STATE_CANCELLED")
_STATUS = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
           409: "ALREADY_EXISTS", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL",
           503: "UNAVAILABLE"}  # fmt: skip
JSON = "application/json; charset=UTF-8"


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
    methods = ("GET", "POST")

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

    def reset(self) -> None:
        with self.lock:
            self.jobs.clear()
            self.server.clear()
            self.failures.clear()

    def answer(self, request: Request) -> Answer:
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


def error_body(status: int, message: str) -> dict[str, Any]:
    return {"error": {"code": status, "message": message, "status": _STATUS.get(status, "UNKNOWN")}}


def error(status: int, message: str) -> Answer:
    return json_answer(status, error_body(status, message), JSON)
