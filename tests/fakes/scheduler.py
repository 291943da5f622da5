"""A loopback HTTP server that plays Cloud Scheduler's REST API (v1) and records each request.

It answers the way the service does for what mlrelay uses: list (paged), get, create (409 when
the job exists), patch with an update mask (404 when missing), pause, resume, delete; errors in
Google's JSON error shape; enums as numbers when the client asks `$alt=json;enum-encoding=int`.
`fail_next(method, path_part, status)` makes the next matching request answer `status` (429,
500, 503, ...) once, as the real service does under load.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .server import Answer, LoopbackFake, Request, json_answer

STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
STATES = {"ENABLED": 1, "PAUSED": 2}
JOB_PATH = re.compile(r"^/v1/(projects/[^/]+/locations/[^/]+/jobs/[^/:]+)(?::(pause|resume))?$")
JOBS_PATH = re.compile(r"^/v1/(projects/[^/]+/locations/[^/]+)/jobs$")


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    body: dict[str, Any] | None
    status: int


@dataclass
class FakeScheduler(LoopbackFake):
    page_size: int = 2  # small, so the client's pager is exercised
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    failures: list[tuple[str, str, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    methods = ("GET", "POST", "PATCH", "DELETE")

    @property
    def endpoint(self) -> str:
        return self.url

    @property
    def requests(self) -> list[Recorded]:
        return [
            Recorded(r.method, r.path, r.query, r.json(), e.answer.status)
            for e in self.server.recorded()
            for r in (e.request,)
        ]

    def fail_next(self, method: str, path_part: str, status: int) -> None:
        self.failures.append((method, path_part, status))

    def writes(self) -> list[Recorded]:
        return [r for r in self.requests if r.method != "GET"]

    def answer(self, request: Request) -> Answer:
        query = request.query
        numeric = "enum-encoding=int" in "".join(query.get("$alt", []))
        with self.lock:
            status, answer = self._answer(
                request.method, request.path, query, request.json(), numeric
            )
        return json_answer(status, answer, "application/json; charset=UTF-8")

    def _answer(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        body: dict[str, Any] | None,
        numeric: bool,
    ) -> tuple[int, dict[str, Any]]:
        for i, (m, part, status) in enumerate(self.failures):
            if m == method and part in path:
                del self.failures[i]
                return error(status, f"injected {status} for {method} {path}")
        if match := JOBS_PATH.match(path):
            parent = match.group(1)
            if method == "GET":
                return 200, self._list(parent, query, numeric)
            if method == "POST":
                job = dict(body or {})
                name = job.get("name", "")
                if not name.startswith(parent + "/jobs/"):
                    return error(400, f"job name {name!r} is not under {parent}")
                if name in self.jobs:
                    return error(409, f"Job {name} already exists.")
                job["state"] = "ENABLED"
                job["userUpdateTime"] = now()
                self.jobs[name] = job
                return 200, shown(job, numeric)
        elif match := JOB_PATH.match(path):
            name, verb = match.group(1), match.group(2)
            job = self.jobs.get(name)
            if job is None:
                return error(404, f"Job {name} not found.")
            if method == "GET" and verb is None:
                return 200, shown(job, numeric)
            if method == "DELETE" and verb is None:
                del self.jobs[name]
                return 200, {}
            if method == "POST" and verb in ("pause", "resume"):
                job["state"] = "PAUSED" if verb == "pause" else "ENABLED"
                job["userUpdateTime"] = now()
                return 200, shown(job, numeric)
            if method == "PATCH" and verb is None:
                mask = query.get("updateMask", [""])[0]
                if not mask:
                    return error(400, "update_mask is required")
                for field_path in mask.split(","):
                    camel = re.sub(r"_([a-z])", lambda m: m.group(1).upper(), field_path)
                    if camel not in ("schedule", "timeZone", "description", "pubsubTarget"):
                        return error(400, f"update_mask names an unknown field {field_path!r}")
                    if camel in (body or {}):
                        job[camel] = body[camel]  # type: ignore[index]
                    else:
                        job.pop(camel, None)
                job["userUpdateTime"] = now()
                return 200, shown(job, numeric)
        return error(400, f"no such method: {method} {path}")

    def _list(self, parent: str, query: dict[str, list[str]], numeric: bool) -> dict[str, Any]:
        names = sorted(n for n in self.jobs if n.startswith(parent + "/jobs/"))
        start = int(query.get("pageToken", ["0"])[0] or 0)
        size = min(int(query.get("pageSize", [str(self.page_size)])[0]), self.page_size)
        page = names[start : start + size]
        answer: dict[str, Any] = {"jobs": [shown(self.jobs[n], numeric) for n in page]}
        if start + size < len(names):
            answer["nextPageToken"] = str(start + size)
        return answer


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def shown(job: dict[str, Any], numeric: bool) -> dict[str, Any]:
    copy = json.loads(json.dumps(job))
    if numeric:
        copy["state"] = STATES[job["state"]]
    return copy


def error(status: int, message: str) -> tuple[int, dict[str, Any]]:
    return status, {
        "error": {"code": status, "message": message, "status": STATUS_NAMES.get(status, "")}
    }
