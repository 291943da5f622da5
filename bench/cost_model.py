"""What a run costs: pure conversion of counted operations into list-price dollars.

bench/cost.py counts; this module classifies and converts (no I/O but reading locals.tf), so a
unit test can pin the rules: Pub/Sub's 1,000-byte minimum per request, Cloud Run's 100 ms
rounding, GCS class A / class B by JSON-API method and path as GCS pricing defines them.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.prices import DEFAULT_CPU_FOR_MEMORY_MIB, PRICES

TIB = 2**40
PUBSUB_MINIMUM_BYTES = 1000
RUN_ROUNDING_SECONDS = 0.1

_OBJECT = re.compile(r"^/(?:storage/v1|download/storage/v1)/b/[^/]+/o/[^/?]+")
_OBJECTS = re.compile(r"^/storage/v1/b/[^/]+/o/?$")
_BUCKET = re.compile(r"^/storage/v1/b/[^/?]+/?$")


def gcs_class(method: str, target: str) -> str:
    """'A', 'B' or 'free' for one GCS JSON-API request (https://cloud.google.com/storage/pricing
    #operations-by-class): inserts and uploads, patch/update, list, copy, rewrite, compose are
    class A; get (metadata or media) is class B; delete is free."""
    path = target.split("?", 1)[0]
    method = method.upper()
    if method == "DELETE":
        return "free"
    if path.startswith("/upload/") or path.startswith("/batch/"):
        return "A"
    if method in ("POST", "PUT", "PATCH"):
        return "A"  # insert, update, patch, copyTo, rewriteTo, compose
    if method == "GET":
        if _OBJECTS.match(path) or path.rstrip("/") in ("/storage/v1/b",):
            return "A"  # objects.list / buckets.list
        if _OBJECT.match(path) or _BUCKET.match(path):
            return "B"  # objects.get (metadata or alt=media) / buckets.get
    return "B"


def gcs_kind(method: str, target: str) -> str:
    """A short name for one GCS JSON-API request, to show where the operations go."""
    path, _, query = target.partition("?")
    method = method.upper()
    for verb in ("rewriteTo", "copyTo", "compose"):
        if f"/{verb}" in path:
            return verb
    if path.startswith("/upload/"):
        return "upload (insert)"
    if method == "GET" and _OBJECTS.match(path):
        return "list"
    if method == "GET" and (path.startswith("/download/") or "alt=media" in query):
        return "get media"
    if method == "GET":
        return "get metadata"
    return method.lower()


def pubsub_billable(message_bytes: int) -> int:
    """Billable bytes of one publish or push request carrying one message."""
    return max(PUBSUB_MINIMUM_BYTES, message_bytes)


def message_bytes(data: bytes, attributes: dict[str, str], message_id: str) -> int:
    """A message's data volume as Pub/Sub counts it: data, each attribute's key and value,
    20 bytes of timestamp, the message id."""
    attrs = sum(len(k.encode()) + len(v.encode()) for k, v in attributes.items())
    return len(data) + attrs + 20 + len(message_id.encode())


def push_message_bytes(push_body: bytes) -> int:
    """The data volume of the message in a push request's JSON envelope."""
    message: dict[str, Any] = json.loads(push_body).get("message", {})
    data = base64.b64decode(message.get("data", ""))
    id_ = str(message.get("messageId") or message.get("message_id") or "")
    return message_bytes(data, dict(message.get("attributes") or {}), id_)


def billed_seconds(seconds: float) -> float:
    """Cloud Run bills each request's time rounded up to the next 100 ms."""
    steps = math.ceil(round(seconds / RUN_ROUNDING_SECONDS, 6))
    return max(1, steps) * RUN_ROUNDING_SECONDS


@dataclass(frozen=True)
class FunctionSpec:
    memory_gib: float
    cpu: float


def memory_mib(memory: str) -> int:
    match = re.fullmatch(r"(\d+)(Mi|Gi)", memory)
    if match is None:
        raise ValueError(f"unknown memory {memory!r}")
    return int(match[1]) * (1024 if match[2] == "Gi" else 1)


def function_specs(locals_tf: Path) -> dict[str, FunctionSpec]:
    """Memory and CPU of every function from infra/modules/mlrelay/locals.tf (a null cpu is the
    CPU the memory gives on Cloud Run functions)."""
    import hcl2

    with locals_tf.open() as handle:
        parsed: dict[str, Any] = hcl2.load(handle)
    specs: dict[str, Any] = {}
    for block in parsed["locals"]:
        specs.update(block.get("function_specs", {}))
    out = {}
    for name, spec in specs.items():
        mib = memory_mib(_unquote(spec["memory"]))
        cpu = _unquote(spec.get("cpu"))
        given = float(cpu) if cpu not in ("", "None", "null") else None
        out[_unquote(name)] = FunctionSpec(mib / 1024, given or DEFAULT_CPU_FOR_MEMORY_MIB[mib])
    return out


def _unquote(value: object) -> str:
    """python-hcl2 keeps a string's quotes ('"512Mi"'); None (null) becomes ''."""
    return "" if value is None else str(value).strip('"')


@dataclass
class Counts:
    """What `runs` runs used, counted at the proxies and the emulator."""

    runs: int
    published: Counter[str] = field(default_factory=Counter)  # topic -> messages
    published_bytes: Counter[str] = field(default_factory=Counter)  # topic -> billable bytes
    delivered: Counter[str] = field(default_factory=Counter)  # topic -> pushes
    delivered_bytes: Counter[str] = field(default_factory=Counter)  # topic -> billable bytes
    invocations: Counter[str] = field(default_factory=Counter)  # function -> pushes
    seconds: dict[str, float] = field(default_factory=dict)  # function -> measured seconds
    billed: dict[str, float] = field(default_factory=dict)  # function -> 100 ms-rounded seconds
    gcs: Counter[str] = field(default_factory=Counter)  # 'A' / 'B' / 'free' -> operations
    gcs_kinds: Counter[str] = field(default_factory=Counter)  # gcs_kind -> operations
    bigquery_jobs: int = 0
    bigquery_bytes: int = 0  # totalBytesProcessed the peer reported
    vertex_calls: int = 0
    slack_calls: int = 0
    stored_bytes: int = 0  # what the bucket holds after the runs (snapshots, ledger, records)


def dollars(counts: Counts, specs: dict[str, FunctionSpec]) -> dict[str, float]:
    """Line -> USD for all `counts.runs` runs at list price."""
    p = {k: v.value for k, v in PRICES.items()}
    cpu = sum(counts.billed.get(f, 0.0) * s.cpu for f, s in specs.items())
    memory = sum(counts.billed.get(f, 0.0) * s.memory_gib for f, s in specs.items())
    pubsub_bytes = sum(counts.published_bytes.values()) + sum(counts.delivered_bytes.values())
    bq_billable = max(counts.bigquery_bytes, counts.bigquery_jobs * 10 * 2**20)
    return {
        "functions: vCPU": cpu * p["run_vcpu_second"],
        "functions: memory": memory * p["run_gib_second"],
        "functions: requests": sum(counts.invocations.values()) * p["run_request"],
        "Pub/Sub throughput": pubsub_bytes / TIB * p["pubsub_tib"],
        "GCS class A": counts.gcs["A"] * p["gcs_class_a"],
        "GCS class B": counts.gcs["B"] * p["gcs_class_b"],
        "BigQuery on demand": bq_billable / TIB * p["bigquery_tib"],
    }


def storage_monthly(stored_bytes: int) -> float:
    """USD a month for keeping `stored_bytes` in Standard storage."""
    return stored_bytes / 1e9 * PRICES["gcs_gb_month"].value


def idle_monthly(schedules: int) -> float:
    """Fixed monthly cost of `schedules` schedules with no runs: one Cloud Scheduler job each
    (free tier ignored); the functions scale to zero (no minimum instances), so nothing else."""
    return schedules * PRICES["scheduler_job_month"].value


def composer_monthly() -> float:
    return PRICES["composer3_smallest_month"].value
