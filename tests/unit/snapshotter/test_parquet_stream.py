"""Stream mode's writer on its own: Arrow batches in, Parquet files out, with the row groups,
file sizes and checksums asked for, and memory bounded by a batch and a row group."""

from __future__ import annotations

import base64
import hashlib
import io
import weakref
from collections.abc import Iterator
from typing import IO, Any

import google_crc32c
import pyarrow as pa
import pyarrow.parquet as pq

from mlrelay_snapshotter.parquet_stream import StreamLayout, parquet_schema, write_parquet_files

SCHEMA = pa.schema([("id", pa.int64()), ("name", pa.string()), ("items", pa.list_(pa.int64()))])


class Bucket:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def open(self, key: str) -> IO[bytes]:
        bucket = self

        class Upload(io.BytesIO):
            def close(self) -> None:
                bucket.objects[key] = self.getvalue()
                super().close()

        return Upload()


def batches(count: int, rows: int) -> Iterator[pa.RecordBatch]:
    for n in range(count):
        ids = pa.array(range(n * rows, (n + 1) * rows), pa.int64())
        yield pa.record_batch(
            [ids, pa.array([f"row {i}" for i in range(rows)]), pa.array([[1, 2]] * rows)],
            schema=SCHEMA,
        )


def test_row_groups_files_and_checksums_are_as_asked() -> None:
    bucket = Bucket()
    layout = StreamLayout(file_bytes=40_000, row_group_rows=1000, compression="zstd")
    files, rows = write_parquet_files(batches(7, 1500), SCHEMA, bucket.open, "s/r/", layout)
    assert rows == 10_500
    assert [f.key for f in files] == [f"s/r/part-{i:05d}.parquet" for i in range(len(files))]
    assert len(files) > 1  # rolled over past file_bytes
    seen = []
    for f in files:
        data = bucket.objects[f.key]
        assert f.size_bytes == len(data)
        assert f.sha256 == hashlib.sha256(data).hexdigest()
        crc = google_crc32c.Checksum(data).digest()  # type: ignore[no-untyped-call]
        assert f.crc32c == base64.b64encode(crc).decode()
        parquet = pq.ParquetFile(pa.BufferReader(data))
        groups = [parquet.metadata.row_group(i).num_rows for i in range(parquet.num_row_groups)]
        assert all(g == 1000 for g in groups[:-1])
        assert parquet.metadata.row_group(0).column(0).compression == "ZSTD"
        assert parquet.schema_arrow == parquet_schema(SCHEMA, layout)
        seen += parquet.read().column("id").to_pylist()
    assert seen == list(range(10_500))  # the source's order, nothing lost or repeated


def test_an_empty_source_still_gets_one_file_with_its_schema() -> None:
    bucket = Bucket()
    layout = StreamLayout(file_bytes=1 << 20, row_group_rows=100, compression="none")
    files, rows = write_parquet_files(iter([]), SCHEMA, bucket.open, "s/r/", layout)
    assert rows == 0 and len(files) == 1
    assert pq.read_schema(pa.BufferReader(bucket.objects[files[0].key])).names == SCHEMA.names


def test_memory_is_bounded_by_a_batch_not_by_the_table() -> None:
    """Arrow's allocations while batch k arrives do not grow with k."""
    bucket = Bucket()
    layout = StreamLayout(file_bytes=1 << 40, row_group_rows=30_000, compression="zstd")
    samples: list[int] = []

    def measured(count: int) -> Iterator[Any]:
        for batch in batches(count, 50_000):  # leftovers of each batch cross row groups
            samples.append(pa.total_allocated_bytes())
            yield batch

    write_parquet_files(measured(40), SCHEMA, bucket.open, "s/r/", layout)
    one_batch = next(batches(1, 50_000)).nbytes
    assert max(samples) < 4 * one_batch
    assert max(samples[20:]) <= max(samples[:20]) * 1.2  # flat, not growing with the table


class Received:
    """Stands for a received response's bytes: a batch read from it is a view, not a copy."""

    def __init__(self, data: bytes) -> None:
        self.data = data


def received_batches(count: int, rows: int, released: list[bool]) -> Iterator[pa.RecordBatch]:
    """Batches that are views of their own `Received` buffer; on being asked for the next one,
    notes whether the previous buffer was already let go."""
    ref: Any = None
    for batch in batches(count, rows):
        holder = Received(batch.serialize().to_pybytes())
        view = pa.foreign_buffer(pa.py_buffer(holder.data).address, len(holder.data), holder)
        ref = weakref.ref(holder)
        box = [pa.ipc.read_record_batch(view, SCHEMA)]
        del holder, view, batch
        yield box.pop()
        released.append(ref() is None)


def test_a_received_batch_is_let_go_before_the_next_one_is_read() -> None:
    """The writer keeps no reference to a received batch (and its response's bytes) while the
    next one arrives, even when some of its rows wait for the next row group."""
    released: list[bool] = []
    layout = StreamLayout(file_bytes=1 << 40, row_group_rows=1000, compression="zstd")
    _, rows = write_parquet_files(
        received_batches(4, 1500, released), SCHEMA, Bucket().open, "s/r/", layout
    )
    assert rows == 6000
    assert released == [True, True, True, True]
