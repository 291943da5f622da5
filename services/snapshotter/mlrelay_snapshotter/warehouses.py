"""Pick the snapshot engine for the configured mode (the one place that knows both)."""

from __future__ import annotations

from typing import Any

from mlrelay.config.snapshot import SnapshotSettings
from mlrelay.ports.container import Ports
from mlrelay.ports.protocols import Warehouse


def build_warehouse(ports: Ports) -> Warehouse:
    if ports.settings.mode == "embedded":
        from mlrelay_snapshotter.duckdb_warehouse import DuckDbWarehouse

        return DuckDbWarehouse(
            ports.settings.warehouse_path, compression=ports.settings.snapshot.compression
        )
    from mlrelay_snapshotter.bigquery_warehouse import BigQueryWarehouse

    config = ports.settings.snapshot
    return BigQueryWarehouse(
        bigquery_client(ports.settings.project, config),
        bigquery_read_client(config) if config.mode == "stream" else None,
        config,
        request_timeout_seconds=ports.settings.http_timeout_seconds,
    )


def bigquery_client(project: str, config: SnapshotSettings) -> Any:
    from google.cloud import bigquery

    if not config.bigquery_endpoint:
        return bigquery.Client(project=project, location=config.bigquery_location or None)
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials

    return bigquery.Client(
        project=project,
        location=config.bigquery_location or None,
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options=ClientOptions(api_endpoint=config.bigquery_endpoint),
    )


def bigquery_read_client(config: SnapshotSettings) -> Any:
    """The Storage Read client, its channel with storage_read.py's options."""
    import grpc  # type: ignore[import-untyped,unused-ignore]
    from google.cloud.bigquery_storage_v1 import BigQueryReadClient
    from google.cloud.bigquery_storage_v1.services.big_query_read.transports import (
        BigQueryReadGrpcTransport,
    )

    from mlrelay_snapshotter.storage_read import READ_CHANNEL_OPTIONS

    if not config.bigquery_storage_endpoint:

        def channel(*args: Any, **kwargs: Any) -> Any:
            # the client's own channel (endpoint, credentials, its options) plus ours
            kwargs["options"] = [*kwargs.get("options", []), *READ_CHANNEL_OPTIONS]
            return BigQueryReadGrpcTransport.create_channel(*args, **kwargs)

        def transport(**kwargs: Any) -> Any:
            return BigQueryReadGrpcTransport(channel=channel, **kwargs)

        return BigQueryReadClient(transport=transport)  # type: ignore[no-untyped-call,unused-ignore]
    # as the client's own channel: no cap on a ReadRowsResponse's size
    unlimited = [("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)]
    insecure = grpc.insecure_channel(
        config.bigquery_storage_endpoint, options=[*unlimited, *READ_CHANNEL_OPTIONS]
    )
    return BigQueryReadClient(  # type: ignore[no-untyped-call,unused-ignore]
        transport=BigQueryReadGrpcTransport(channel=insecure)
    )
