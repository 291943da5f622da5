"""The ReadRows call of stream mode against a loopback gRPC server playing BigQuery's Storage Read
API: a broken stream resumes at the rows already read, a refusal is the client library's error."""

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
from mlrelay_snapshotter.storage_read import read_arrow_batches
from mlrelay_snapshotter.warehouses import bigquery_read_client

SCHEMA = pa.schema([("id", pa.int64()), ("name", pa.string())])
SERVICE = "google.cloud.bigquery.storage.v1.BigQueryRead"
STREAM = "projects/p/locations/us/sessions/s/streams/0"


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
