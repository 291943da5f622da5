"""Storage Read API rows as Arrow record batches, with memory bounded by about two responses.

The client library's `read_rows` turns each ReadRowsResponse into a proto-plus message: the
protobuf parser copies the Arrow bytes into the message, reading `serialized_record_batch` copies
them again, and its `ReadRowsStream` keeps the previous message alive while the next one arrives.
Here the same RPC is called on the client's own channel (its credentials and options) with the
response left as bytes; the two fields we need are found in the wire format, and the record batch
is a zero-copy view of those bytes, let go before the next response is asked for. Between
responses, the memory freed by receiving and writing is handed back to the system. A broken
connection resumes at the rows already read, as `ReadRowsStream` does.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

READ_ROWS = "/google.cloud.bigquery.storage.v1.BigQueryRead/ReadRows"
# google/cloud/bigquery/storage/v1/storage.proto (ReadRowsResponse) and arrow.proto
ARROW_RECORD_BATCH = 4
ROW_COUNT = 6
SERIALIZED_RECORD_BATCH = 1
VARINT, FIXED64, LENGTH_DELIMITED, FIXED32 = 0, 1, 2, 5
# the errors after which ReadRowsStream reconnects (google.cloud.bigquery_storage_v1.reader)
RESUMABLE_INTERNAL = ("RST_STREAM", "Received unexpected EOS on DATA frame from server")
RECONNECTS = 5  # in a row without a row read in between
# Options of the Storage Read channel (warehouses.py). gRPC's default receive window grows with
# its bandwidth-delay estimate: on a fast link with large responses it let several responses queue
# in memory while the writer was busy. A fixed window (16 MiB: ~16 GB/s at a 1 ms round trip,
# 320 MB/s at 50 ms) keeps that to about the next response. And ReadRows is received on the
# reading thread when it asks for the next response (grpc.experimental.ChannelOptions
# .SingleThreadedUnaryStream), not by gRPC's own Python thread. Peak RSS reading 10 M rows from
# local-bigquery (50 MB responses): 365 MB with both, 429 MB without the fixed window, 414 MB
# received on gRPC's thread, 444 MB without return_freed_memory().
READ_CHANNEL_OPTIONS = [
    ("grpc.http2.bdp_probe", 0),
    ("grpc.http2.lookahead_bytes", 16 * 1024 * 1024),
    ("SingleThreadedUnaryStream", 1),
]
# received bytes between return_freed_memory() calls (each took 2-10 ms in that trace)
RETURN_EVERY = 32 * 1024 * 1024


@dataclass(frozen=True)
class ArrowResponse:
    row_count: int
    record_batch: memoryview  # a view of the received bytes (empty if the response had none)


def read_varint(data: memoryview, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if at >= len(data):
            raise ValueError("truncated varint in a ReadRowsResponse")
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, at
        shift += 7


def wire_fields(data: memoryview) -> Iterator[tuple[int, int | memoryview]]:
    """(field number, value) of a protobuf message's top-level fields: ints for varints,
    zero-copy views for length-delimited fields; fixed-width fields are skipped."""
    at = 0
    while at < len(data):
        key, at = read_varint(data, at)
        number, kind = key >> 3, key & 7
        if kind == VARINT:
            value, at = read_varint(data, at)
            yield number, value
        elif kind == LENGTH_DELIMITED:
            size, at = read_varint(data, at)
            if at + size > len(data):
                raise ValueError("truncated field in a ReadRowsResponse")
            yield number, data[at : at + size]
            at += size
        elif kind == FIXED64:
            at += 8
        elif kind == FIXED32:
            at += 4
        else:
            raise ValueError(f"unexpected wire type {kind} in a ReadRowsResponse")


def parse_arrow_response(payload: bytes) -> ArrowResponse:
    """A serialized ReadRowsResponse -> its row count and a view of its Arrow record batch."""
    row_count = 0
    record_batch = memoryview(b"")
    for number, value in wire_fields(memoryview(payload)):
        if number == ROW_COUNT and isinstance(value, int):
            row_count = value
        elif number == ARROW_RECORD_BATCH and isinstance(value, memoryview):
            for inner, found in wire_fields(value):
                if inner == SERIALIZED_RECORD_BATCH and isinstance(found, memoryview):
                    record_batch = found
    return ArrowResponse(row_count, record_batch)


def read_arrow_batches(read_client: Any, stream_name: str, schema: Any) -> Iterator[Any]:
    """The stream's rows as pyarrow RecordBatches of `schema`, each a view of its response.

    No deadline on the whole stream (a big table takes as long as it takes). Errors come out as
    google.api_core exceptions, as from the client library."""
    import grpc  # type: ignore[import-untyped,unused-ignore]
    import pyarrow as pa
    from google.api_core import exceptions
    from google.api_core.gapic_v1 import routing_header
    from google.cloud.bigquery_storage_v1 import types

    call = read_client.transport.grpc_channel.unary_stream(
        READ_ROWS,
        request_serializer=types.ReadRowsRequest.serialize,
        response_deserializer=parse_arrow_response,
    )
    to_metadata: Any = routing_header.to_grpc_metadata  # routes the call, as the client does
    metadata = [to_metadata((("read_stream", stream_name),))]
    offset = failures = unreturned = 0
    while True:
        request = types.ReadRowsRequest(read_stream=stream_name, offset=offset)
        try:
            for response in call(request, metadata=metadata):
                offset += response.row_count
                failures = 0
                size = response.record_batch.nbytes
                if size:
                    batch = pa.ipc.read_record_batch(pa.py_buffer(response.record_batch), schema)
                    del response  # the batch alone keeps the bytes alive
                    unreturned += size
                    due = unreturned >= RETURN_EVERY
                    if due:
                        return_freed_memory()  # what receiving it took (gRPC's copies)
                    yield batch
                    del batch  # before the next response arrives
                    if due:
                        return_freed_memory()  # what writing it took
                        unreturned = 0
            return
        except grpc.RpcError as exc:
            error = exceptions.from_grpc_error(exc)  # type: ignore[no-untyped-call,unused-ignore]
            failures += 1
            if not resumable(error) or failures > RECONNECTS:
                raise error from exc


def resumable(error: Exception) -> bool:
    from google.api_core import exceptions

    if isinstance(error, exceptions.ServiceUnavailable):
        return True
    return isinstance(error, exceptions.InternalServerError) and any(
        text in str(error.message) for text in RESUMABLE_INTERNAL
    )


def return_freed_memory() -> None:
    """Hand back what receiving a response and writing the previous one left free: pyarrow's
    pool keeps freed pages for reuse and glibc keeps freed heap in each thread's arena (gRPC's
    core allocates on its own threads), so without this the process keeps the high-water marks
    of both phases at once."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()
    trim = malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def malloc_trim() -> Any:
    """glibc's malloc_trim, or None (another C library)."""
    import ctypes

    return getattr(ctypes.CDLL(None), "malloc_trim", None)
