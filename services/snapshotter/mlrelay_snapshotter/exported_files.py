"""Describe Parquet files BigQuery wrote into the bucket: checksums, rows and schema.

The bytes are streamed chunk by chunk through sha256 and crc32c (memory: one chunk); our crc32c
must equal the one GCS computed, so a file damaged between BigQuery and the manifest is caught.
Rows and schema come from each file's footer (a ranged read), i.e. from what the files hold.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from mlrelay.adapters.gcs_store import GcsStore, StoredObject
from mlrelay.errors import TransientError
from mlrelay.ports.protocols import ColumnSchema, ExportedFile
from mlrelay_snapshotter.checksums import RunningChecksums

CHUNK = 8 * 1024 * 1024


@dataclass(frozen=True)
class DescribedFile:
    file: ExportedFile
    rows: int
    schema: Any  # pyarrow.Schema


def describe(store: GcsStore, found: StoredObject) -> DescribedFile:
    import pyarrow.parquet as pq

    sums = RunningChecksums()
    with store.open_read(found.key) as handle:
        while chunk := handle.read(CHUNK):
            sums.update(chunk)
    crc32c = sums.crc32c
    if found.crc32c and crc32c != found.crc32c:
        raise TransientError(
            f"{found.key}: read crc32c {crc32c} but GCS has {found.crc32c}; reading again"
        )
    with store.open_read(found.key) as handle:
        parquet = pq.ParquetFile(handle)
        schema = parquet.schema_arrow  # as a reader sees it (JSON: the arrow.json extension)
        rows = parquet.metadata.num_rows
    return DescribedFile(
        ExportedFile(found.key, found.size_bytes, sums.sha256, crc32c), rows, schema
    )


def describe_all(store: GcsStore, objects: list[StoredObject]) -> list[DescribedFile]:
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda found: describe(store, found), objects))


def arrow_columns(schema: Any) -> list[ColumnSchema]:
    return [ColumnSchema(f.name, str(f.type), f.nullable) for f in schema]
