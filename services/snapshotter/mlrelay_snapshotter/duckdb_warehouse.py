"""The embedded warehouse: DuckDB writes the Parquet files itself (`COPY ... TO`), so the table's
rows never pass through Python objects, the local twin of BigQuery's server-side export."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import structlog

from mlrelay.adapters.local_folder import LocalFolderStore
from mlrelay.errors import PermanentError, TransientError
from mlrelay.ports.protocols import (
    AggregateQuery,
    ColumnSchema,
    ExportedFile,
    ExportResult,
    ObjectStore,
    SnapshotPlan,
)
from mlrelay.sql_parameters import parameter_names, respell_parameters
from mlrelay_snapshotter.checksums import file_checksums

log = structlog.get_logger()

TARGET_FILE_SIZE = "256MB"
CODECS = {"zstd": "ZSTD", "snappy": "SNAPPY", "gzip": "GZIP", "none": "UNCOMPRESSED"}


def quote_table(table: str) -> str:
    return ".".join('"' + part.replace('"', '""') + '"' for part in table.split("."))


class DuckDbWarehouse:
    def __init__(
        self, database: Path, threads: int | None = None, compression: str = "zstd"
    ) -> None:
        self.database = database
        self.threads = threads
        self.codec = CODECS[compression]

    def export_snapshot(self, plan: SnapshotPlan, store: ObjectStore) -> ExportResult:
        import duckdb
        import pyarrow.parquet as pq

        if not isinstance(store, LocalFolderStore):
            raise PermanentError(
                "MLRELAY_MODE",
                "the DuckDB warehouse writes to a local folder",
                "use the embedded mode's local bucket",
            )
        if not self.database.exists():
            raise PermanentError(
                "warehouse",
                f"{self.database} does not exist",
                "seed it (mlrelay run seeds the demo) or set MLRELAY_HOME",
            )
        point_in_time = "read_at_export"
        params: dict[str, object] = {}
        if plan.source_kind == "table":
            assert plan.table is not None
            select = f"SELECT * FROM {quote_table(plan.table)}"  # noqa: S608
        else:
            assert plan.sql is not None
            select = respell_parameters(plan.sql, lambda name: f"${name}")  # DuckDB's spelling
            used = parameter_names(plan.sql)
            params = {k: v for k, v in plan.query_parameters.items() if k in used}
            if "snapshot_time" in used and plan.snapshot_time is not None:
                params["snapshot_time"] = plan.snapshot_time
                point_in_time = f"@snapshot_time = {plan.snapshot_time.isoformat()}"
        target = store.path(plan.prefix.rstrip("/"))
        target.mkdir(parents=True, exist_ok=True)
        copy = (
            f"COPY ({select}) TO '{target.as_posix()}' (FORMAT PARQUET, COMPRESSION {self.codec}, "
            f"FILENAME_PATTERN 'part-{{i}}', FILE_SIZE_BYTES '{TARGET_FILE_SIZE}', OVERWRITE)"
        )
        config: dict[str, str | bool | int | float | list[str]] = (
            {"threads": self.threads} if self.threads else {}
        )
        try:
            with duckdb.connect(str(self.database), read_only=True, config=config) as con:
                row = con.execute(copy, params).fetchone()
        except (
            duckdb.CatalogException,
            duckdb.BinderException,
            duckdb.ParserException,
            duckdb.ConversionException,
            duckdb.InvalidInputException,
        ) as exc:
            raise PermanentError(
                "source", str(exc).splitlines()[0], "fix the pipeline's source in the registry"
            ) from None
        except duckdb.IOException as exc:
            raise TransientError(f"DuckDB I/O error: {exc}") from exc
        row_count = int(row[0]) if row else 0
        paths = sorted(target.glob("part-*.parquet"))
        files = []
        for path in paths:
            sha256, crc32c = file_checksums(path)
            key = path.relative_to(store.root).as_posix()
            files.append(ExportedFile(key, path.stat().st_size, sha256, crc32c))
        schema = pq.read_schema(paths[0]) if paths else None
        columns = [ColumnSchema(f.name, str(f.type), f.nullable) for f in schema] if schema else []
        return ExportResult(
            files, row_count, columns, f"duckdb {duckdb.__version__}", point_in_time=point_in_time
        )

    def measure_snapshot(
        self, plan: SnapshotPlan, store: ObjectStore, export: ExportResult, query: AggregateQuery
    ) -> dict[str, Any]:
        """The aggregate query over the Parquet files the export just wrote (DuckDB reads them
        in place; the list of files is a parameter too)."""
        import duckdb

        del plan  # the files are the snapshot
        assert isinstance(store, LocalFolderStore)  # export_snapshot refused any other
        sql, params = query.render("duckdb", "read_parquet($mlrelay_files)")
        params["mlrelay_files"] = [store.path(f.key).as_posix() for f in export.files]
        try:
            with duckdb.connect(":memory:") as con:
                cursor = con.execute(sql, params)
                row = cursor.fetchone()
                names = [d[0] for d in cursor.description or []]
        except (
            duckdb.BinderException,
            duckdb.ConversionException,
            duckdb.InvalidInputException,
        ) as exc:
            raise PermanentError(
                "expectations",
                str(exc).splitlines()[0],
                "fix the pipeline's expectations in the registry (a column's type or values)",
            ) from None
        except duckdb.IOException as exc:
            raise TransientError(f"DuckDB I/O error reading the snapshot: {exc}") from exc
        return dict(zip(names, row or (), strict=True))
