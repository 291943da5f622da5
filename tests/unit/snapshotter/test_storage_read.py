"""Storage Read responses read from their wire format: the fields stream mode needs, with the
Arrow record batch a view of the received bytes rather than a copy. (The ReadRows call against a
loopback gRPC server: tests/integration/snapshotter/test_storage_read.py.)"""

from __future__ import annotations

import pyarrow as pa
import pytest
from google.cloud.bigquery_storage_v1 import types

from mlrelay_snapshotter.storage_read import parse_arrow_response

SCHEMA = pa.schema([("id", pa.int64()), ("name", pa.string())])


def arrow_response(rows: int) -> tuple[bytes, bytes]:
    batch = pa.record_batch(
        [pa.array(range(rows), pa.int64()), pa.array([f"row {i}" for i in range(rows)])],
        schema=SCHEMA,
    )
    serialized = batch.serialize().to_pybytes()
    response = types.ReadRowsResponse(
        row_count=rows,
        stats=types.StreamStats(progress=types.StreamStats.Progress(at_response_end=0.5)),
        arrow_record_batch=types.ArrowRecordBatch(
            serialized_record_batch=serialized, row_count=rows
        ),
        arrow_schema=types.ArrowSchema(serialized_schema=SCHEMA.serialize().to_pybytes()),
        uncompressed_byte_size=12345,
    )
    return types.ReadRowsResponse.serialize(response), serialized


def test_the_row_count_and_the_arrow_batch_are_read_as_a_view_of_the_response() -> None:
    payload, serialized = arrow_response(70_000)  # sizes that take multi-byte varints
    parsed = parse_arrow_response(payload)
    assert parsed.row_count == 70_000
    assert parsed.record_batch.obj is payload  # no copy of the batch's bytes
    assert parsed.record_batch.tobytes() == serialized
    batch = pa.ipc.read_record_batch(pa.py_buffer(parsed.record_batch), SCHEMA)
    assert batch.column("id").to_pylist() == list(range(70_000))


def test_a_response_without_an_arrow_batch_has_an_empty_one() -> None:
    payload = types.ReadRowsResponse.serialize(types.ReadRowsResponse(row_count=0))
    parsed = parse_arrow_response(payload)
    assert parsed.row_count == 0 and parsed.record_batch.nbytes == 0


def test_a_truncated_response_is_an_error_not_a_short_batch() -> None:
    payload, _ = arrow_response(100)
    with pytest.raises(ValueError, match="truncated"):
        parse_arrow_response(payload[: len(payload) // 2])
