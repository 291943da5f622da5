"""The Google snapshot engine: BigQuery reads the source at a point in time into a staging table,
then either exports it to Parquet itself (`export`, the default: no table data passes through
this process) or streams it through the Storage Read API into Parquet files that mlrelay writes
(`stream`: file size, row groups and compression under our control, memory bounded by about two
responses and one row group)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog

from mlrelay.adapters.gcs_store import GcsStore
from mlrelay.config.snapshot import SnapshotSettings
from mlrelay.errors import PermanentError, TransientError
from mlrelay.ports.protocols import (
    AggregateQuery,
    ColumnSchema,
    ExportResult,
    ObjectStore,
    SnapshotPlan,
)
from mlrelay_snapshotter.bigquery_jobs import bigquery_errors, run_job
from mlrelay_snapshotter.bigquery_source import scalar_parameter, source_query, staging_table_id
from mlrelay_snapshotter.exported_files import arrow_columns, describe_all
from mlrelay_snapshotter.parquet_stream import StreamLayout, parquet_schema, write_parquet_files
from mlrelay_snapshotter.storage_read import read_arrow_batches

log = structlog.get_logger()

STAGING_EXPIRATION = timedelta(days=7)


@dataclass
class BigQueryWarehouse:
    client: Any  # google.cloud.bigquery.Client
    read_client: Any  # google.cloud.bigquery_storage_v1.BigQueryReadClient (stream mode)
    config: SnapshotSettings
    request_timeout_seconds: float | None = None  # None: the retry budget (api_retry_seconds)

    @property
    def retry(self) -> Any:
        """The client's retries of 5xx/429/connection errors, within our budget (its own default
        is 10 minutes, more than a function has)."""
        from google.cloud import bigquery

        return bigquery.DEFAULT_RETRY.with_deadline(self.config.api_retry_seconds)

    @property
    def timeout(self) -> float:
        """One request's wait for an answer (MLRELAY_HTTP_TIMEOUT_SECONDS), then a retry."""
        return self.request_timeout_seconds or self.config.api_retry_seconds

    @property
    def location(self) -> str | None:
        return self.config.bigquery_location or None

    def export_snapshot(self, plan: SnapshotPlan, store: ObjectStore) -> ExportResult:
        if not isinstance(store, GcsStore):
            raise PermanentError(
                "MLRELAY_MODE",
                "the BigQuery snapshot engine writes to a GCS bucket",
                "use MLRELAY_MODE=google with MLRELAY_BUCKET",
            )
        query, point_in_time = self.stage(plan)
        staging = query.destination
        with bigquery_errors("reading the staging table's schema"):
            source_schema = describe_bigquery_schema(
                self.client.get_table(staging, retry=self.retry, timeout=self.timeout).schema
            )
        if self.config.mode == "stream":
            result = self.stream(plan, store, staging)
        else:
            result = self.extract(plan, store, staging)
        return ExportResult(
            files=result.files,
            row_count=result.row_count,
            schema=result.schema,
            engine=f"bigquery {self.config.mode}",
            job_ids=[query.job_id, *result.job_ids],
            point_in_time=point_in_time,
            source_schema=source_schema,
        )

    def stage(self, plan: SnapshotPlan) -> tuple[Any, str]:
        """Query job (deterministic id): the source as of the run's time -> a staging table."""
        from google.cloud import bigquery

        self.ensure_staging_dataset()
        source = source_query(plan)
        destination = self.staging_table(plan)

        config = bigquery.QueryJobConfig(
            query_parameters=source.parameters,
            destination=destination,
            write_disposition="WRITE_TRUNCATE",
            labels={"mlrelay": "snapshot"},
        )
        job = self._query_job(source.sql, config, f"{plan.job_id}-query", "the snapshot query")
        return job, source.point_in_time

    def _query_job(
        self, sql: str, config: Any, job_id: str, what: str, field: str = "source"
    ) -> Any:
        """One query job under a deterministic id (`run_job`: a redelivery re-attaches to it)."""

        def start(attempt_id: str) -> Any:
            return self.client.query(
                sql,
                job_config=config,
                job_id=attempt_id,
                location=self.location,
                retry=self.retry,
                timeout=self.timeout,
                job_retry=None,
            )

        return run_job(
            self.client,
            job_id,
            start,
            what=what,
            location=self.location,
            wait_seconds=self.config.job_wait_seconds,
            retry=self.retry,
            timeout=self.timeout,
            field=field,
        )

    def measure_snapshot(
        self, plan: SnapshotPlan, store: ObjectStore, export: ExportResult, query: AggregateQuery
    ) -> dict[str, Any]:
        """One query job (deterministic id, so a redelivery re-attaches to it) on the staging
        table the export read, its values in `query_parameters`."""
        from google.cloud import bigquery

        del store, export  # the staging table holds exactly what was exported
        staging = self.staging_table(plan)
        sql, values = query.render("bigquery", f"`{staging}`")
        parameters = [scalar_parameter(name, value) for name, value in values.items()]

        config = bigquery.QueryJobConfig(
            query_parameters=parameters, labels={"mlrelay": "expectations"}
        )
        job = self._query_job(
            sql, config, f"{plan.job_id}-expectations", "the expectations query", "expectations"
        )
        with bigquery_errors("reading the expectations' results", "expectations"):
            rows = list(job.result(retry=self.retry, timeout=self.timeout))
        return dict(rows[0].items()) if rows else {}

    def staging_table(self, plan: SnapshotPlan) -> str:
        return staging_table_id(
            self.client.project, self.config.staging_dataset, plan.job_id.removeprefix("mlrelay-")
        )

    def ensure_staging_dataset(self) -> None:
        from google.api_core import exceptions
        from google.cloud import bigquery

        dataset_id = f"{self.client.project}.{self.config.staging_dataset}"
        with bigquery_errors("the staging dataset", "MLRELAY_BIGQUERY_STAGING_DATASET"):
            try:
                self.client.get_dataset(dataset_id, retry=self.retry, timeout=self.timeout)
            except exceptions.NotFound:
                dataset = bigquery.Dataset(dataset_id)
                dataset.location = self.location
                dataset.default_table_expiration_ms = int(STAGING_EXPIRATION.total_seconds() * 1000)
                self.client.create_dataset(
                    dataset, exists_ok=True, retry=self.retry, timeout=self.timeout
                )

    def extract(self, plan: SnapshotPlan, store: GcsStore, staging: Any) -> ExportResult:
        """Extract job (deterministic id) to a wildcard URI, so exports over 1 GB are sharded."""
        from google.cloud import bigquery

        def start(job_id: str) -> Any:
            attempt = job_id.rsplit("-", 1)[1]
            config = bigquery.ExtractJobConfig(  # type: ignore[no-untyped-call,unused-ignore]
                destination_format="PARQUET", compression=self.config.compression.upper()
            )
            return self.client.extract_table(
                staging,
                store.uri(f"{plan.prefix}part-{attempt}-*.parquet"),
                job_id=job_id,
                job_config=config,
                location=self.location,
                retry=self.retry,
                timeout=self.timeout,
            )

        job = run_job(
            self.client,
            f"{plan.job_id}-extract",
            start,
            what="the Parquet export",
            location=self.location,
            wait_seconds=self.config.job_wait_seconds,
            retry=self.retry,
            timeout=self.timeout,
        )
        # the files of the attempt that succeeded (a failed attempt's files are not listed)
        pattern = str(job.destination_uris[0])
        files_prefix = pattern.removeprefix(store.uri("")).split("*", 1)[0]
        objects = store.objects(files_prefix)
        if not objects:
            raise TransientError(f"export job {job.job_id} is done but {pattern} matches nothing")
        described = describe_all(store, objects)
        schemas = {str(d.schema) for d in described}
        if len(schemas) > 1:
            raise PermanentError("source", f"the exported files disagree on the schema: {schemas}")
        return ExportResult(
            files=[d.file for d in described],
            row_count=sum(d.rows for d in described),
            schema=arrow_columns(described[0].schema),
            engine="bigquery export",
            job_ids=[job.job_id],
        )

    def stream(self, plan: SnapshotPlan, store: GcsStore, staging: Any) -> ExportResult:
        """Storage Read API (Arrow, one stream, so the files' order is the table's) -> Parquet."""
        import pyarrow as pa
        from google.cloud.bigquery_storage_v1 import types

        table = (
            f"projects/{staging.project}/datasets/{staging.dataset_id}/tables/{staging.table_id}"
        )
        requested = types.ReadSession(table=table, data_format=types.DataFormat.ARROW)
        with bigquery_errors("the Storage Read session"):
            session = self.read_client.create_read_session(
                parent=f"projects/{self.client.project}",
                read_session=requested,
                max_stream_count=1,
            )
        schema = pa.ipc.read_schema(pa.py_buffer(session.arrow_schema.serialized_schema))

        def batches() -> Any:
            # each batch a view of its response's bytes, released before the next arrives;
            # resumes at its offset after a broken connection (storage_read.py)
            for stream in session.streams:
                yield from read_arrow_batches(self.read_client, stream.name, schema)

        layout = StreamLayout(
            file_bytes=self.config.file_megabytes * 1024 * 1024,
            row_group_rows=self.config.row_group_rows,
            compression=self.config.compression,
        )
        with bigquery_errors("reading rows with the Storage Read API"):
            files, rows = write_parquet_files(
                batches(), schema, store.open_write, plan.prefix, layout
            )
        stored = {found.key: found for found in store.objects(plan.prefix + "part-")}
        for written in files:
            found = stored.get(written.key)
            if found is None or (found.crc32c and found.crc32c != written.crc32c):
                raise TransientError(f"{written.key} did not arrive intact in the bucket; retrying")
        columns = arrow_columns(parquet_schema(schema, layout))
        return ExportResult(files, rows, columns, "bigquery stream", [])


def describe_bigquery_schema(fields: Any) -> list[ColumnSchema]:
    """BigQuery's own types (REPEATED as ARRAY<...>, RECORD as STRUCT<...>)."""
    columns = []
    for f in fields:
        kind = f.field_type
        if f.field_type in ("RECORD", "STRUCT"):
            inner = ", ".join(f"{c.name} {c.field_type}" for c in f.fields)
            kind = f"STRUCT<{inner}>"
        if f.mode == "REPEATED":
            kind = f"ARRAY<{kind}>"
        columns.append(ColumnSchema(f.name, kind, f.mode != "REQUIRED"))
    return columns
