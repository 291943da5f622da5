"""A snapshot of the Palmer penguins as mlrelay's snapshotter writes one (Parquet file and
manifest), for the tests that run the penguins pipeline on kfp.local."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import duckdb
import palmerpenguins
import pyarrow.parquet as pq

PENGUINS_CSV = Path(palmerpenguins.__file__).parent / "data" / "penguins.csv"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_snapshot(root: Path, run_id: str = "run-test-1") -> tuple[Path, str]:
    """Write a snapshot directory as mlrelay's snapshotter does; return (manifest, fingerprint)."""
    root.mkdir(parents=True, exist_ok=True)
    part = root / "part-0.parquet"
    duckdb.sql(  # paths are ours (package data and tmp_path), not user input
        f"COPY (SELECT * FROM read_csv('{PENGUINS_CSV}', nullstr='NA')) "  # noqa: S608
        f"TO '{part}' (FORMAT PARQUET)"
    )
    sha = _sha256(part)
    schema = [
        {"name": field.name, "type": str(field.type), "nullable": field.nullable}
        for field in pq.read_schema(part)
    ]
    fingerprint = hashlib.sha256(f"{run_id}:{sha}".encode()).hexdigest()
    manifest = {
        "schema_version": 1,
        "run_id": run_id,
        "row_count": pq.read_metadata(part).num_rows,
        "fingerprint": fingerprint,
        "files": [
            {
                "path": part.name,
                "uri": part.as_uri(),
                "size_bytes": part.stat().st_size,
                "sha256": sha,
                "crc32c": "",
            }
        ],
        "schema": schema,
    }
    manifest_path = root / "manifest.json"
    manifest_path.write_text(json.dumps(manifest, indent=2))
    return manifest_path, fingerprint
