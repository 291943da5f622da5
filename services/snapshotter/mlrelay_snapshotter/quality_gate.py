"""The snapshot's quality gate: measure the expectations once, after the export and before the
manifest, and stop the run on a failed `error` one."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import structlog

from mlrelay.ports.protocols import ExportResult, ObjectStore, SnapshotPlan, Warehouse
from mlrelay.registry import ExpectationSpec
from mlrelay.stage import keys
from mlrelay_snapshotter.expectations import (
    ExpectationsFailed,
    build_query,
    check_columns,
    evaluate,
    hard_failures,
    warnings,
)

log = structlog.get_logger()


def previous_row_count(
    store: ObjectStore, dataset: str, run_id: str, snapshot_time: datetime
) -> int | None:
    """The row count of the dataset's snapshot before this one (the `latest` pointer, unless it
    is this run's or newer than it: a backfill compares with nothing rather than the future)."""
    raw = store.read(keys.latest_pointer(dataset))
    if raw is None:
        return None
    pointer = json.loads(raw)
    if pointer.get("run_id") == run_id:
        return None
    if datetime.fromisoformat(pointer["snapshot_time"]) > snapshot_time:
        return None
    return int(pointer["row_count"])


def gate_snapshot(
    expectations: list[ExpectationSpec],
    *,
    plan: SnapshotPlan,
    store: ObjectStore,
    export: ExportResult,
    warehouse: Warehouse,
    previous_rows: int | None,
    logical_time: datetime,
) -> list[dict[str, Any]]:
    """The `quality` results (one per expectation); ExpectationsFailed on a failed `error` one.
    At most one query runs in the engine, and none when only row counts are checked."""
    if not expectations:
        return []
    check_columns(expectations, export.schema)
    query = build_query(expectations)
    measured = warehouse.measure_snapshot(plan, store, export, query) if query else {}
    quality = evaluate(
        expectations,
        measured,
        row_count=export.row_count,
        previous_rows=previous_rows,
        logical_time=logical_time,
    )
    failed = hard_failures(quality)
    log.info(
        "snapshot_expectations_measured",
        checks=len(quality),
        failed=len(failed),
        warnings=len(warnings(quality)),
    )
    if failed:
        raise ExpectationsFailed(quality)
    return quality
