"""The snapshotter's configuration (part of `Settings`, read once from the environment)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from mlrelay.errors import PermanentError

SnapshotMode = Literal["export", "stream"]
COMPRESSIONS = ("zstd", "snappy", "gzip", "none")


@dataclass(frozen=True)
class SnapshotSettings:
    """How the Google backend takes a snapshot.

    `export`: BigQuery writes the Parquet files itself (query job -> staging table -> extract
    job); `stream`: the Storage Read API streams Arrow batches through this process into Parquet
    files whose size, row groups and compression mlrelay controls.
    """

    mode: SnapshotMode = "export"
    bigquery_location: str = ""  # "" = let BigQuery decide (the source's location)
    staging_dataset: str = "mlrelay_staging"
    job_wait_seconds: float = 480.0  # then: transient, the redelivery re-attaches to the job
    api_retry_seconds: float = 60.0  # retries of one BigQuery API call (5xx, 429, timeouts)
    file_megabytes: int = 256  # stream mode: roll to a new file past this size
    row_group_rows: int = 131_072  # stream mode
    compression: str = "zstd"  # stream mode, and export mode's extract job
    # emulators only (anonymous credentials when set): http://host:port and host:port
    bigquery_endpoint: str = ""
    bigquery_storage_endpoint: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SnapshotSettings:
        mode = env.get("MLRELAY_SNAPSHOT_MODE", "export")
        if mode not in ("export", "stream"):
            raise PermanentError(
                "MLRELAY_SNAPSHOT_MODE", f"{mode!r} is not a snapshot mode", "use export or stream"
            )
        compression = env.get("MLRELAY_SNAPSHOT_COMPRESSION", "zstd").lower()
        if compression not in COMPRESSIONS:
            raise PermanentError(
                "MLRELAY_SNAPSHOT_COMPRESSION",
                f"{compression!r} is not supported",
                "use one of " + ", ".join(COMPRESSIONS),
            )
        return cls(
            mode=mode,  # type: ignore[arg-type]
            bigquery_location=env.get("MLRELAY_BIGQUERY_LOCATION", ""),
            staging_dataset=env.get("MLRELAY_BIGQUERY_STAGING_DATASET", "mlrelay_staging"),
            job_wait_seconds=float(_positive(env, "MLRELAY_BIGQUERY_JOB_WAIT_SECONDS", 480)),
            api_retry_seconds=float(_positive(env, "MLRELAY_BIGQUERY_RETRY_SECONDS", 60)),
            file_megabytes=_positive(env, "MLRELAY_SNAPSHOT_FILE_MB", 256),
            row_group_rows=_positive(env, "MLRELAY_SNAPSHOT_ROW_GROUP_ROWS", 131_072),
            compression=compression,
            bigquery_endpoint=env.get("MLRELAY_BIGQUERY_ENDPOINT", ""),
            bigquery_storage_endpoint=env.get("MLRELAY_BIGQUERY_STORAGE_ENDPOINT", ""),
        )


def _positive(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise PermanentError(name, f"{raw!r} is not a positive integer", f"e.g. {name}={default}")
    return int(raw)
