"""A loopback HTTP server that plays a Kubeflow Pipelines host's v2beta1 REST API for tests.

Enough of the API for `kfp.Client`: healthz, pipelines (list with a display_name filter, upload,
upload_version, list versions), experiments, runs and recurring runs. With `token` set, every
path (healthz too) asks for `Authorization: Bearer <token>`, as a host behind an authenticating
proxy does, and answers 401 without it or with another. It records every request;
`check_body` validates a JSON request body against the generated models of `kfp-server-api`
(which ships no OpenAPI file: each model's `openapi_types` and `attribute_map` are the schema).
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import kfp_server_api

from .server import Answer, LoopbackFake, Request, json_answer

PREFIX = "/apis/v2beta1"
NOW = "2026-11-25T06:00:01Z"
INT64_FIELDS = {"max_concurrency", "interval_second"}


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any  # JSON document, or {"fields": ..., "file": bytes} for a multipart upload


@dataclass
class FakeKfp(LoopbackFake):
    pipelines: dict[str, dict[str, Any]] = field(default_factory=dict)
    versions: dict[str, dict[str, Any]] = field(default_factory=dict)
    experiments: dict[str, dict[str, Any]] = field(default_factory=dict)
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    recurring_runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    failures: deque[tuple[int, str]] = field(default_factory=deque)
    token: str | None = None  # set: every request must carry it as a bearer token
    lock: threading.Lock = field(default_factory=threading.Lock)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    methods = ("GET", "POST", "DELETE")

    @property
    def host(self) -> str:
        return self.url

    @property
    def requests(self) -> list[Recorded]:
        return [
            Recorded(r.method, r.path, r.query, _body(r))
            for r in (e.request for e in self.server.recorded())
        ]

    def fail_next(self, status: int, message: str, times: int = 1) -> None:
        for _ in range(times):
            self.failures.append((status, message))

    def posts(self, suffix: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == "POST" and r.path == PREFIX + suffix]

    def new_id(self, kind: str) -> str:
        return f"{kind}-{next(self.ids)}"

    def answer(self, request: Request) -> Answer:
        body = _body(request)
        if self.token is not None and bearer(request) != self.token:
            return _error(401, "Unauthenticated: a valid bearer token is required")
        with self.lock:
            failure = self.failures.popleft() if self.failures else None
            if failure and request.path != PREFIX + "/healthz":
                return _error(*failure)
            path = request.path.removeprefix(PREFIX)
            return _route(self, request.method, path, request.query, body)


def bearer(request: Request) -> str | None:
    """The bearer token a request carries (kfp writes the header name in lower case)."""
    for name, value in request.headers.items():
        if name.lower() == "authorization" and value.startswith("Bearer "):
            return value.removeprefix("Bearer ")
    return None


def check_body(body: Any, model: str) -> list[str]:
    """Problems of `body` (JSON as sent) against kfp-server-api model `model`; [] means valid."""
    problems: list[str] = []
    _check(body, model, "$", problems)
    return problems


def _check(value: Any, kind: str, at: str, problems: list[str]) -> None:
    if value is None:
        return
    scalar = {"str": str, "bool": bool, "int": int, "float": (int, float), "datetime": str}
    if kind == "str" and at.rsplit(".", 1)[-1] in INT64_FIELDS and isinstance(value, int):
        return  # int64 is a string in the proto JSON mapping; grpc-gateway takes a number too
    if kind in scalar:
        if not isinstance(value, scalar[kind]) or (kind == "int" and isinstance(value, bool)):
            problems.append(f"{at}: expected {kind}, got {value!r:.60}")
        return
    if kind == "object":
        return
    if kind.startswith("list["):
        if not isinstance(value, list):
            problems.append(f"{at}: expected a list")
            return
        for i, item in enumerate(value):
            _check(item, kind[5:-1], f"{at}[{i}]", problems)
        return
    if kind.startswith("dict("):
        if not isinstance(value, dict):
            problems.append(f"{at}: expected an object")
            return
        inner = kind[5:-1].split(", ", 1)[1]
        for key, item in value.items():
            _check(item, inner, f"{at}.{key}", problems)
        return
    model = getattr(kfp_server_api.models, kind)
    allowed = getattr(model, "allowable_values", None)
    if allowed is not None and not model.openapi_types:
        if value not in allowed:
            problems.append(f"{at}: {value!r} is not one of {allowed}")
        return
    if not isinstance(value, dict):
        problems.append(f"{at}: expected a {kind} object")
        return
    by_json = {json_name: name for name, json_name in model.attribute_map.items()}
    for key, item in value.items():
        if key not in by_json:
            problems.append(f"{at}.{key}: not a field of {kind}")
            continue
        _check(item, model.openapi_types[by_json[key]], f"{at}.{key}", problems)


def _matches(item: dict[str, Any], filter_text: str | None) -> bool:
    if not filter_text:
        return True
    for predicate in json.loads(filter_text).get("predicates", []):
        if predicate.get("operation") not in (1, "EQUALS"):
            raise ValueError(f"fake KFP supports EQUALS only, got {predicate}")
        wanted = predicate.get("stringValue", predicate.get("string_value"))
        if item.get(predicate["key"]) != wanted:
            return False
    return True


def _multipart(content_type: str, raw: bytes) -> dict[str, Any]:
    boundary = re.search(r"boundary=([^;]+)", content_type)
    assert boundary, content_type
    parts = raw.split(b"--" + boundary.group(1).strip('"').encode())
    files = {}
    for part in parts[1:-1]:
        head, _, payload = part.strip(b"\r\n").partition(b"\r\n\r\n")
        name = re.search(rb'name="([^"]+)"', head)
        if name:
            files[name.group(1).decode()] = payload
    return files


def _body(request: Request) -> Any:
    content_type = request.headers.get("Content-Type", "")
    if content_type.startswith("multipart/"):
        return _multipart(content_type, request.body)
    return json.loads(request.body) if request.body else None


def _answer(status: int, body: dict[str, Any]) -> Answer:
    return json_answer(status, body)


def _error(status: int, message: str) -> Answer:
    return _answer(status, {"error": message, "code": status, "message": message})


def _route(fake: FakeKfp, method: str, path: str, query: dict[str, list[str]], body: Any) -> Answer:
    one = {k: v[0] for k, v in query.items()}

    def found(items: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
        return [i for i in items.values() if _matches(i, one.get("filter"))]

    def in_experiment(item: dict[str, Any]) -> bool:
        return bool(item["experiment_id"] == one.get("experiment_id", item["experiment_id"]))

    if (method, path) == ("GET", "/healthz"):
        return _answer(200, {"commit_sha": "fake", "tag_name": "2.5.0", "multi_user": False})
    if (method, path) == ("GET", "/pipelines"):
        items = found(fake.pipelines)
        return _answer(200, {"pipelines": items, "total_size": len(items)})
    if (method, path) == ("POST", "/pipelines/upload"):
        name = one["name"]
        if any(p["display_name"] == name for p in fake.pipelines.values()):
            return _error(409, f"Failed to upload pipeline: name {name} already exists")
        pipeline = {"pipeline_id": fake.new_id("pipeline"), "display_name": name,
                    "created_at": NOW}  # fmt: skip
        fake.pipelines[pipeline["pipeline_id"]] = pipeline
        _add_version(fake, pipeline["pipeline_id"], name, body)
        return _answer(200, pipeline)
    if (method, path) == ("POST", "/pipelines/upload_version"):
        pipeline_id, name = one["pipelineid"], one["name"]
        if any(
            v["display_name"] == name and v["pipeline_id"] == pipeline_id
            for v in fake.versions.values()
        ):
            return _error(409, f"Failed to upload pipeline version: {name} already exists")
        return _answer(200, _add_version(fake, pipeline_id, name, body))
    if method == "GET" and (m := re.fullmatch(r"/pipelines/([^/]+)/versions", path)):
        items = [v for v in found(fake.versions) if v["pipeline_id"] == m.group(1)]
        return _answer(200, {"pipeline_versions": items, "total_size": len(items)})
    if (method, path) == ("GET", "/experiments"):
        items = found(fake.experiments)
        return _answer(200, {"experiments": items, "total_size": len(items)})
    if (method, path) == ("POST", "/experiments"):
        experiment = {**body, "experiment_id": fake.new_id("experiment"), "created_at": NOW}
        fake.experiments[experiment["experiment_id"]] = experiment
        return _answer(200, experiment)
    if (method, path) == ("GET", "/runs"):
        items = [r for r in found(fake.runs) if in_experiment(r)]
        return _answer(200, {"runs": items, "total_size": len(items)})
    if method == "GET" and (m := re.fullmatch(r"/runs/([^/:]+)", path)):
        run = fake.runs.get(m.group(1))
        return _answer(200, run) if run else _error(404, f"run {m.group(1)} not found")
    if method == "POST" and (m := re.fullmatch(r"/runs/([^/:]+):terminate", path)):
        run = fake.runs.get(m.group(1))
        if run is None:
            return _error(404, f"run {m.group(1)} not found")
        if run["state"] in ("SUCCEEDED", "FAILED", "SKIPPED", "CANCELED"):
            return _error(400, f"Failed to terminate run {m.group(1)}: it is {run['state']}")
        run["state"] = "CANCELING"
        return _answer(200, {})
    if (method, path) == ("POST", "/runs"):
        run = {**body, "run_id": fake.new_id("run"), "state": "PENDING", "created_at": NOW}
        fake.runs[run["run_id"]] = run
        return _answer(200, run)
    if (method, path) == ("GET", "/recurringruns"):
        items = [r for r in found(fake.recurring_runs) if in_experiment(r)]
        return _answer(200, {"recurringRuns": items, "total_size": len(items)})
    if (method, path) == ("POST", "/recurringruns"):
        recurring = {**body, "recurring_run_id": fake.new_id("recurring"),
                     "status": "ENABLED", "created_at": NOW}  # fmt: skip
        fake.recurring_runs[recurring["recurring_run_id"]] = recurring
        return _answer(200, recurring)
    if method == "DELETE" and (m := re.fullmatch(r"/recurringruns/([^/]+)", path)):
        if fake.recurring_runs.pop(m.group(1), None) is None:
            return _error(404, f"recurring run {m.group(1)} not found")
        return _answer(200, {})
    return _error(404, f"fake KFP has no {method} {path}")


def _add_version(fake: FakeKfp, pipeline_id: str, name: str, files: dict[str, bytes]) -> Any:
    import yaml

    version = {
        "pipeline_id": pipeline_id,
        "pipeline_version_id": fake.new_id("version"),
        "display_name": name,
        "created_at": NOW,
        "pipeline_spec": yaml.safe_load(files["uploadfile"]),
    }
    fake.versions[version["pipeline_version_id"]] = version
    return version
