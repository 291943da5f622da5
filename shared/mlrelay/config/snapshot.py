"""The snapshotter's settings (read from the environment by the snapshotter only)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mlrelay.config.env import choice, positive_int, seconds, setting

SnapshotMode = Literal["export", "stream"]
COMPRESSIONS = ("zstd", "snappy", "gzip", "none")


@dataclass(frozen=True)
class SnapshotSettings:
    """How the Google backend takes a snapshot.

    `export`: BigQuery writes the Parquet files itself (query job -> staging table -> extract
    job); `stream`: the Storage Read API streams Arrow batches through this process into Parquet
    files whose size, row groups and compression mlrelay controls.
    """

    mode: SnapshotMode = setting(
        "MLRELAY_SNAPSHOT_MODE",
        "`export`: BigQuery writes the Parquet files itself (no rows pass through the function); "
        "`stream`: the Storage Read API streams Arrow batches through the function into Parquet "
        "files whose size, row groups and compression mlrelay controls.",
        default="export",
        parse=choice("export", "stream"),
    )
    bigquery_location: str = setting(
        "MLRELAY_BIGQUERY_LOCATION",
        "Location of BigQuery jobs; empty: BigQuery decides (the source's location).",
        default="",
    )
    staging_dataset: str = setting(
        "MLRELAY_BIGQUERY_STAGING_DATASET",
        "Dataset holding the point-in-time staging table of each snapshot (export mode).",
        default="mlrelay_staging",
    )
    job_wait_seconds: float = setting(
        "MLRELAY_BIGQUERY_JOB_WAIT_SECONDS",
        "How long one delivery waits for a BigQuery job; then the message is redelivered and "
        "the redelivery re-attaches to the same job (deterministic job ids).",
        default=480.0,
        parse=seconds(480),
    )
    api_retry_seconds: float = setting(
        "MLRELAY_BIGQUERY_RETRY_SECONDS",
        "Retry budget of one BigQuery API call (5xx, 429, timeouts, write conflicts).",
        default=60.0,
        parse=seconds(60),
    )
    file_megabytes: int = setting(
        "MLRELAY_SNAPSHOT_FILE_MB",
        "Stream mode: start a new Parquet file past this size.",
        default=256,
        parse=positive_int(256),
    )
    row_group_rows: int = setting(
        "MLRELAY_SNAPSHOT_ROW_GROUP_ROWS",
        "Stream mode: rows per Parquet row group.",
        default=131_072,
        parse=positive_int(131_072),
    )
    compression: str = setting(
        "MLRELAY_SNAPSHOT_COMPRESSION",
        "Parquet compression of stream mode, of export mode's extract job and of the embedded "
        "DuckDB COPY: " + ", ".join(COMPRESSIONS) + ".",
        default="zstd",
        parse=choice(*COMPRESSIONS, lower=True),
    )
    bigquery_endpoint: str = setting(
        "MLRELAY_BIGQUERY_ENDPOINT",
        "Emulators only: http://host:port of a BigQuery REST API (anonymous credentials).",
        default="",
    )
    bigquery_storage_endpoint: str = setting(
        "MLRELAY_BIGQUERY_STORAGE_ENDPOINT",
        "Emulators only: host:port of a BigQuery Storage Read gRPC API (no TLS).",
        default="",
    )
