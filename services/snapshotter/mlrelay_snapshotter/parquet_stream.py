"""Arrow record batches -> Parquet files in the bucket, with memory bounded by one row group.

Each file is written through a sink that computes its sha256 and crc32c as the bytes go out, so
the manifest's checksums cost no second read. Files roll over past a size; row groups have a
fixed number of rows; compression is chosen by the caller.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import IO, Any

from mlrelay.ports.protocols import ExportedFile
from mlrelay_snapshotter.checksums import RunningChecksums


class HashingSink(io.RawIOBase):
    """A write-only stream that checksums and counts what passes through to `target`."""

    def __init__(self, target: IO[bytes]) -> None:
        self.target = target
        self.checksums = RunningChecksums()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self.checksums.update(view)
        self.target.write(view)
        self.size += len(view)
        return len(view)

    def tell(self) -> int:
        return self.size

    def close(self) -> None:
        if not self.closed:
            self.target.close()
        super().close()


@dataclass(frozen=True)
class StreamLayout:
    file_bytes: int
    row_group_rows: int
    compression: str


def write_parquet_files(
    batches: Iterable[Any],
    schema: Any,
    open_file: Callable[[str], IO[bytes]],
    prefix: str,
    layout: StreamLayout,
) -> tuple[list[ExportedFile], int]:
    """Write `batches` (pyarrow RecordBatches of `schema`) as `prefix`part-00000.parquet, ...;
    returns the files written and the row count."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    files: list[ExportedFile] = []
    rows = 0
    sink: HashingSink | None = None
    writer: Any = None
    pending: list[Any] = []
    pending_rows = 0
    key = ""

    def finish() -> None:
        nonlocal sink, writer
        if writer is None or sink is None:
            return
        writer.close()
        sink.close()
        sums = sink.checksums
        files.append(ExportedFile(key, sink.size, sums.sha256, sums.crc32c))
        sink = writer = None

    def flush() -> None:
        nonlocal sink, writer, pending, pending_rows, key
        if writer is None:
            key = f"{prefix}part-{len(files):05d}.parquet"
            sink = HashingSink(open_file(key))
            writer = pq.ParquetWriter(sink, schema, compression=layout.compression)
        if pending:
            writer.write_table(
                pa.Table.from_batches(pending, schema), row_group_size=layout.row_group_rows
            )
        pending, pending_rows = [], 0
        assert sink is not None
        if sink.size >= layout.file_bytes:
            finish()

    for batch in batches:
        start = 0
        while start < batch.num_rows:
            take = min(batch.num_rows - start, layout.row_group_rows - pending_rows)
            pending.append(batch.slice(start, take))
            pending_rows += take
            start += take
            rows += take
            if pending_rows == layout.row_group_rows:
                flush()
        if pending and pending[-1].num_rows < batch.num_rows:
            # the batch's leftover rows wait for the next row group: copy them, since a slice
            # would keep the whole received batch alive
            pending[-1] = pending[-1].take(pa.array(range(pending[-1].num_rows)))
        del batch  # let the received batch go before the next one is read
    if pending or not files:
        flush()  # the last partial row group; an empty source still gets one file with its schema
    finish()
    return files, rows


def parquet_schema(schema: Any, layout: StreamLayout) -> Any:
    """The schema a reader of the written files sees (Parquet renames list items `element`),
    from an empty file written with the same options: the manifest says what the files hold."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(schema.empty_table(), buffer, compression=layout.compression)
    return pq.read_schema(pa.BufferReader(buffer.getvalue()))
