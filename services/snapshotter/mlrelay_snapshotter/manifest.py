"""The snapshot manifest (what a run trained on) and the `latest` pointer of a dataset."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from mlrelay.contracts import utc_now
from mlrelay.ports.protocols import ExportResult, ObjectStore
from mlrelay.stage import keys


class ManifestFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    path: str
    uri: str
    size_bytes: int
    sha256: str
    crc32c: str


class SnapshotManifest(BaseModel):
    schema_version: int = 1
    run_id: str
    pipeline: str
    dataset: str
    source: dict[str, Any]
    snapshot_time: datetime
    point_in_time: str
    exported_at: datetime
    engine: str
    job_ids: list[str]
    row_count: int
    total_bytes: int
    schema_: list[dict[str, Any]]  # the Parquet files' columns (Arrow types)
    source_schema: list[dict[str, Any]] = []  # the warehouse's own types (BigQuery), if known
    files: list[ManifestFile]
    fingerprint: str
    quality: list[dict[str, Any]] = []  # the expectations' results (quality_gate.py)

    model_config = ConfigDict(extra="forbid", frozen=True)

    def to_json(self) -> bytes:
        data = self.model_dump(mode="json")
        data["schema"] = data.pop("schema_")
        return json.dumps(data, indent=2).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> SnapshotManifest:
        data = json.loads(raw)
        data["schema_"] = data.pop("schema")
        return cls.model_validate(data)


def data_fingerprint(export: ExportResult, prefix: str) -> str:
    """Changes exactly when the data does: schema, row count and file contents, not the run id."""
    material = {
        "schema": [asdict(c) for c in export.schema],
        "row_count": export.row_count,
        "files": [(f.key.removeprefix(prefix), f.sha256) for f in export.files],
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def build_manifest(
    *,
    run_id: str,
    pipeline: str,
    dataset: str,
    source: dict[str, Any],
    snapshot_time: datetime,
    point_in_time: str,
    export: ExportResult,
    prefix: str,
    store: ObjectStore,
    quality: list[dict[str, Any]] | None = None,
) -> SnapshotManifest:
    return SnapshotManifest(
        run_id=run_id,
        pipeline=pipeline,
        dataset=dataset,
        source=source,
        snapshot_time=snapshot_time,
        point_in_time=point_in_time,
        exported_at=utc_now(),
        engine=export.engine,
        job_ids=export.job_ids,
        row_count=export.row_count,
        total_bytes=sum(f.size_bytes for f in export.files),
        schema_=[asdict(c) for c in export.schema],
        source_schema=[asdict(c) for c in export.source_schema],
        files=[
            ManifestFile(
                path=f.key.removeprefix(prefix),
                uri=store.uri(f.key),
                size_bytes=f.size_bytes,
                sha256=f.sha256,
                crc32c=f.crc32c,
            )
            for f in export.files
        ],
        fingerprint=data_fingerprint(export, prefix),
        quality=quality or [],
    )


def move_latest_pointer(
    store: ObjectStore, dataset: str, manifest: SnapshotManifest, manifest_key: str
) -> bool:
    """Point `latest.json` at this manifest unless a newer snapshot already holds it (a backfill
    never moves `latest` back in time). Compare-and-swap, so racing runs cannot interleave."""
    key = keys.latest_pointer(dataset)
    pointer = json.dumps(
        {
            "run_id": manifest.run_id,
            "manifest_key": manifest_key,
            "manifest_uri": store.uri(manifest_key),
            "snapshot_time": manifest.snapshot_time.isoformat(),
            "fingerprint": manifest.fingerprint,
            "row_count": manifest.row_count,
            "updated_at": utc_now().isoformat(),
        },
        indent=2,
    ).encode()
    for _ in range(10):
        current = store.read_versioned(key)
        if current is None:
            if store.create(key, pointer):
                return True
            continue
        data, generation = current
        existing = datetime.fromisoformat(json.loads(data)["snapshot_time"])
        if existing > manifest.snapshot_time:
            return False
        if store.replace(key, pointer, generation):
            return True
    return False
