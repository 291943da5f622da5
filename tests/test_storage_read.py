"""Storage Read responses read from their wire format (the fields stream mode needs, with the
Arrow record batch a view of the received bytes rather than a copy), and the ReadRows call
against a loopback gRPC server: resuming after a broken stream, errors as the client library's."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pyarrow as pa
import pytest
from google.api_core import exceptions
from google.cloud.bigquery_storage_v1 import types

from mlrelay.config.snapshot import SnapshotSettings
from mlrelay_snapshotter.storage_read import parse_arrow_response, read_arrow_batches
from mlrelay_snapshotter.warehouses import bigquery_read_client

SCHEMA = pa.schema([("id", pa.int64()), ("name", pa.string())])
SERVICE = "google.cloud.bigquery.storage.v1.BigQueryRead"
STREAM = "projects/p/locations/us/sessions/s/streams/0"


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


class ReadRowsServer:
    """A loopback Storage Read server: `plan` maps a request's offset to the row counts of the
    responses it sends, then how the stream ends (None: normally, else that status code)."""

    def __init__(self, plan: dict[int, tuple[list[int], grpc.StatusCode | None]]) -> None:
        self.plan = plan
        self.requests: list[tuple[int, str]] = []
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        handler = grpc.unary_stream_rpc_method_handler(
            self.read_rows,
            request_deserializer=types.ReadRowsRequest.deserialize,
            response_serializer=types.ReadRowsResponse.serialize,
        )
        self.server.add_generic_rpc_handlers(
            [grpc.method_handlers_generic_handler(SERVICE, {"ReadRows": handler})]
        )
        self.port = self.server.add_insecure_port("127.0.0.1:0")

    def read_rows(self, request: Any, context: Any) -> Iterator[Any]:
        routing = dict(context.invocation_metadata()).get("x-goog-request-params", "")
        self.requests.append((request.offset, routing))
        counts, ending = self.plan[request.offset]
        start = request.offset
        for rows in counts:
            batch = pa.record_batch(
                [pa.array(range(start, start + rows), pa.int64()), pa.array(["x"] * rows)],
                schema=SCHEMA,
            )
            yield types.ReadRowsResponse(
                row_count=rows,
                arrow_record_batch=types.ArrowRecordBatch(
                    serialized_record_batch=batch.serialize().to_pybytes()
                ),
            )
            start += rows
        if ending is not None:
            context.abort(ending, "the stream broke")


def read_ids(server: ReadRowsServer) -> list[int]:
    server.server.start()
    try:
        config = SnapshotSettings(bigquery_storage_endpoint=f"127.0.0.1:{server.port}")
        client = bigquery_read_client(config)
        ids: list[int] = []
        for batch in read_arrow_batches(client, STREAM, SCHEMA):
            ids += batch.column("id").to_pylist()
        return ids
    finally:
        server.server.stop(None)


def test_a_broken_stream_resumes_at_the_rows_already_read() -> None:
    server = ReadRowsServer({0: ([100, 50], grpc.StatusCode.UNAVAILABLE), 150: ([70], None)})
    assert read_ids(server) == list(range(220))
    assert [offset for offset, _ in server.requests] == [0, 150]
    assert all("read_stream=" in routing for _, routing in server.requests)


def test_a_refused_stream_is_the_client_librarys_error_not_a_retry() -> None:
    server = ReadRowsServer({0: ([10], grpc.StatusCode.PERMISSION_DENIED)})
    with pytest.raises(exceptions.PermissionDenied):
        read_ids(server)
    assert len(server.requests) == 1
