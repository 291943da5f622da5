"""Deterministic run ids: the same pipeline, logical time/dedup key and parameters give one id.

The id is valid everywhere it is used as a name: a Vertex AI PipelineJob id, a KFP run name, a
BigQuery job id and a GCS object prefix (lowercase letters, digits and hyphens, <= 128 chars).
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime

from mlrelay.contracts import Parameters

_NOT_SLUG = re.compile(r"[^a-z0-9]+")


def canonical_parameters(parameters: Parameters) -> str:
    """One JSON text per parameter set, whatever the key order."""
    return json.dumps(parameters, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def logical_key(logical_time: datetime | None, dedup_key: str | None) -> str:
    """What makes two requests "the same run": the explicit dedup key, else the schedule slot."""
    if dedup_key:
        return f"key:{dedup_key}"
    if logical_time is None:
        raise ValueError("a run needs a dedup key or a logical time")
    return "time:" + logical_time.astimezone(UTC).isoformat(timespec="seconds")


def _readable_part(logical_time: datetime | None, dedup_key: str | None) -> str:
    if dedup_key:
        return _NOT_SLUG.sub("-", dedup_key.lower()).strip("-")[:32].strip("-") or "key"
    assert logical_time is not None
    return logical_time.astimezone(UTC).strftime("%Y%m%dt%H%M%Sz")


def derive_run_id(
    pipeline: str,
    parameters: Parameters,
    *,
    logical_time: datetime | None = None,
    dedup_key: str | None = None,
) -> str:
    """`<pipeline>-<slot or key>-<hash>`: readable, and unique to the exact inputs."""
    material = "\n".join(
        [pipeline, logical_key(logical_time, dedup_key), canonical_parameters(parameters)]
    )
    digest = hashlib.sha256(material.encode()).hexdigest()[:12]
    return f"{pipeline}-{_readable_part(logical_time, dedup_key)}-{digest}"


def rejection_id(raw: bytes, message_id: str) -> str:
    """An id for a message that never became a run, stable across its redeliveries."""
    digest = hashlib.sha256(message_id.encode() + b"\n" + raw).hexdigest()[:16]
    return f"rejected-{digest}"
