"""A loopback HTTP server that plays Vertex AI's PipelineService REST API (v1) for tests.

It keeps created PipelineJobs, answers a second create of the same job id with the service's real
409 ALREADY_EXISTS error body, records every request, and can be told to fail the next requests
with a given status (429, 503, 400...) to exercise retries and permanent errors.
"""

from __future__ import annotations

import json
import re
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

_JOBS = re.compile(r"^/v1/(projects/[^/]+/locations/[^/]+)/pipelineJobs$")
_JOB = re.compile(r"^/v1/(projects/[^/]+/locations/[^/]+/pipelineJobs/[^/]+)$")
_STATUS = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
           409: "ALREADY_EXISTS", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL",
           503: "UNAVAILABLE"}  # fmt: skip


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


@dataclass
class FakeVertex:
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    failures: deque[tuple[int, str]] = field(default_factory=deque)
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail_next(self, status: int, message: str, times: int = 1) -> None:
        for _ in range(times):
            self.failures.append((status, message))

    def creates(self) -> list[Recorded]:
        return [r for r in self.requests if r.method == "POST" and _JOBS.match(r.path)]

    def reset(self) -> None:
        with self.lock:
            self.jobs.clear()
            self.requests.clear()
            self.failures.clear()


def error_body(status: int, message: str) -> dict[str, Any]:
    return {"error": {"code": status, "message": message, "status": _STATUS.get(status, "UNKNOWN")}}


def _handler(fake: FakeVertex) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _record(self) -> tuple[str, dict[str, list[str]], Any]:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            query = parse_qs(url.query)
            with fake.lock:
                fake.requests.append(
                    Recorded(self.command, url.path, query, dict(self.headers.items()), body)
                )
            return url.path, query, body

        def do_POST(self) -> None:
            path, query, body = self._record()
            with fake.lock:
                failure = fake.failures.popleft() if fake.failures else None
            if failure:
                self._answer(failure[0], error_body(*failure))
                return
            match = _JOBS.match(path)
            if not match or not isinstance(body, dict):
                self._answer(404, error_body(404, f"no such method: POST {path}"))
                return
            job_id = query.get("pipelineJobId", ["generated-1"])[0]
            name = f"{match.group(1)}/pipelineJobs/{job_id}"
            with fake.lock:
                if name in fake.jobs:
                    self._answer(409, error_body(409, f"PipelineJob {name} already exists."))
                    return
                job = {
                    **body,
                    "name": name,
                    "state": "PIPELINE_STATE_PENDING",
                    "createTime": "2026-11-25T06:00:01.000000Z",
                }
                fake.jobs[name] = job
            self._answer(200, job)

        def do_GET(self) -> None:
            path, _, _ = self._record()
            match = _JOB.match(path)
            with fake.lock:
                job = fake.jobs.get(match.group(1)) if match else None
            if job is None:
                self._answer(404, error_body(404, f"{path} not found"))
            else:
                self._answer(200, job)

    return Handler


def start_fake_vertex() -> tuple[FakeVertex, ThreadingHTTPServer]:
    fake = FakeVertex()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    fake.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return fake, server
