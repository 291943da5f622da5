"""The snapshot's expectations on the embedded warehouse (DuckDB over the Parquet files just
written): a failed `error` check is a `snapshot.failed` naming it and its exact observed value,
with no deploy request, no manifest and `latest` left alone; a warning lets the run go on; the
results are in the manifest and a redelivery measures nothing again."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import pytest

from mlrelay.contracts import SnapshotRequest
from mlrelay.ports.protocols import AggregateQuery, ExportResult, ObjectStore, SnapshotPlan
from mlrelay.registry import parse_registry
from mlrelay.stage.envelope import PubsubMessage
from mlrelay_snapshotter.duckdb_warehouse import DuckDbWarehouse
from mlrelay_snapshotter.snapshot import snapshot_for_run
from mlrelay_tools.local.runtime import LocalRuntime
from tests.helpers import REGISTRY, Capture

T0 = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
PIPELINE = """
version: 1
pipelines:
  events:
    source:
      sql: SELECT * FROM events WHERE day >= @since
      query_parameters: [since]
    template: {template}
    parameters: {{since: 0}}
    overridable: [since]
    expectations:
{expectations}
"""


class CountingWarehouse:
    """The DuckDB warehouse, counting the expectation queries it runs."""

    def __init__(self, inner: DuckDbWarehouse) -> None:
        self.inner = inner
        self.queries: list[str] = []

    def export_snapshot(self, plan: SnapshotPlan, store: ObjectStore) -> ExportResult:
        return self.inner.export_snapshot(plan, store)

    def measure_snapshot(
        self, plan: SnapshotPlan, store: ObjectStore, export: ExportResult, query: AggregateQuery
    ) -> dict[str, Any]:
        self.queries.append(query.render("duckdb", "snapshot")[0])
        return self.inner.measure_snapshot(plan, store, export, query)


def make_events(runtime: LocalRuntime, rows: int, *, nulls: int = 0, stale: bool = False) -> None:
    """`events(id, kind, day, seen_at)`: `nulls` rows without a kind; seen_at up to T0 - 1h
    (or 10 days older when `stale`)."""
    newest = T0 - timedelta(hours=1) - (timedelta(days=10) if stale else timedelta())
    with duckdb.connect(str(runtime.settings.warehouse_path)) as con:
        con.execute(
            "CREATE OR REPLACE TABLE events (id BIGINT, kind VARCHAR, day INT, seen_at TIMESTAMPTZ)"
        )
        con.execute(
            """INSERT INTO events SELECT i, CASE WHEN i < $nulls THEN NULL
                   WHEN i % 2 = 0 THEN 'click' ELSE 'view' END, i % 7,
                   $newest::TIMESTAMPTZ - to_seconds(i) FROM range($rows) t(i)""",
            {"rows": rows, "nulls": nulls, "newest": newest},
        )


def use_registry(runtime: LocalRuntime, expectations: str) -> CountingWarehouse:
    text = PIPELINE.format(
        template=REGISTRY.parent / "penguins" / "penguins_pipeline.yaml", expectations=expectations
    )
    runtime.ports._registry = parse_registry(text, "reg.yaml", REGISTRY.parent)
    runtime.ports.__dict__.pop("registry", None)
    warehouse = CountingWarehouse(DuckDbWarehouse(runtime.settings.warehouse_path))
    runtime.ports.use_warehouse(warehouse)
    return warehouse


def request_for(run_id: str, logical_time: datetime = T0) -> SnapshotRequest:
    return SnapshotRequest(
        run_id=run_id,
        pipeline="events",
        parameters={"since": 0},
        logical_time=logical_time,
        trigger="manual",
        accepted_at=logical_time,
    )


def run(runtime: LocalRuntime, run_id: str, logical_time: datetime = T0) -> None:
    snapshot_for_run(request_for(run_id, logical_time), PubsubMessage(b""), runtime.ports)


def deploys(runtime: LocalRuntime, capture: Capture) -> list[str]:
    return [t for t, _ in capture.messages if t == runtime.settings.topics.deploys]


def manifest(runtime: LocalRuntime, run_id: str) -> dict[str, Any] | None:
    raw = runtime.store.read(f"snapshots/events/{run_id}/manifest.json")
    return json.loads(raw) if raw else None


def latest_run(runtime: LocalRuntime) -> str | None:
    raw = runtime.store.read("snapshots/events/latest.json")
    return json.loads(raw)["run_id"] if raw else None


def assert_stopped(runtime: LocalRuntime, capture: Capture, run_id: str) -> Any:
    assert capture.types()[-2:] == ["snapshot.started", "snapshot.failed"]
    assert capture.messages[-1][0] != runtime.settings.topics.deploys
    assert manifest(runtime, run_id) is None
    return capture.events[-1]


def test_nulls_in_a_key_column_fail_the_snapshot_naming_the_count(
    runtime: LocalRuntime, capture: Capture
) -> None:
    make_events(runtime, 500, nulls=3)
    warehouse = use_registry(runtime, "      - not_null: [id, kind]")
    run(runtime, "events-nulls-001")
    failed = assert_stopped(runtime, capture, "events-nulls-001")
    assert deploys(runtime, capture) == []
    assert failed.error.startswith("expectations[0]: not_null(id, kind): 3 null(s) in kind")
    assert failed.details["field"] == "expectations[0]"
    [quality] = failed.details["quality"]
    assert quality["observed"] == 3 and quality["passed"] is False
    assert latest_run(runtime) is None
    assert len(warehouse.queries) == 1

    run(runtime, "events-nulls-001")  # redelivered: the ledger's failed record, no new query
    assert capture.events[-1].details["quality"] == [quality]
    assert len(warehouse.queries) == 1


def test_a_90_percent_row_drop_against_the_previous_snapshot_fails(
    runtime: LocalRuntime, capture: Capture
) -> None:
    make_events(runtime, 1000)
    use_registry(runtime, "      - max_row_change_pct: 50")
    run(runtime, "events-full-001")
    assert capture.events[-1].status == "completed"
    [first] = capture.events[-1].details["quality"]
    assert first["passed"] and first["message"].endswith("no previous snapshot to compare with")
    assert len(deploys(runtime, capture)) == 1

    make_events(runtime, 100)
    run(runtime, "events-drop-001", T0 + timedelta(days=1))
    failed = assert_stopped(runtime, capture, "events-drop-001")
    assert len(deploys(runtime, capture)) == 1  # only the first run's
    assert "100 rows vs 1000 in the previous snapshot (-90%)" in failed.error
    assert failed.details["quality"][0]["observed"] == -90.0
    assert latest_run(runtime) == "events-full-001"


def test_stale_timestamps_fail_with_the_newest_value(
    runtime: LocalRuntime, capture: Capture
) -> None:
    make_events(runtime, 50, stale=True)
    use_registry(runtime, "      - fresh_within: {column: seen_at, window: 24h}")
    run(runtime, "events-stale-001")
    failed = assert_stopped(runtime, capture, "events-stale-001")
    newest = (T0 - timedelta(days=10, hours=1)).isoformat()
    assert failed.details["quality"][0]["observed"] == newest
    assert failed.details["quality"][0]["expected"] == (T0 - timedelta(hours=24)).isoformat()
    assert f"newest seen_at is {newest}, 10 days, 1:00:00 before the logical time" in failed.error


def test_an_empty_result_fails_min_rows_with_zero_rows(
    runtime: LocalRuntime, capture: Capture
) -> None:
    make_events(runtime, 0)
    use_registry(runtime, "      - min_rows: 1\n      - not_null: [id]")
    run(runtime, "events-empty-001")
    failed = assert_stopped(runtime, capture, "events-empty-001")
    assert deploys(runtime, capture) == []
    assert failed.error.startswith("expectations[0]: min_rows(1): 0 rows (fewer than 1)")
    assert [q["passed"] for q in failed.details["quality"]] == [False, True]


def test_a_failed_warning_lets_the_run_go_on_and_says_so(
    runtime: LocalRuntime, capture: Capture
) -> None:
    make_events(runtime, 200, nulls=40)
    warehouse = use_registry(
        runtime,
        """      - max_null_fraction: {column: kind, fraction: 0.1}
        severity: warn
      - accepted_values: {column: kind, values: [click, view]}
      - unique: [id]
        name: one row per event""",
    )
    run(runtime, "events-warn-001")
    done = capture.events[-1]
    assert done.status == "completed" and len(deploys(runtime, capture)) == 1
    assert done.details["quality_warnings"] == [
        "max_null_fraction(kind, 0.1): 40 of 200 rows null in kind (0.2)"
    ]
    stored = manifest(runtime, "events-warn-001")
    assert stored is not None and stored["quality"] == done.details["quality"]
    assert [q["name"] for q in stored["quality"]] == [
        "max_null_fraction(kind, 0.1)",
        "accepted_values(kind)",
        "one row per event",
    ]
    assert [q["passed"] for q in stored["quality"]] == [False, True, True]
    assert latest_run(runtime) == "events-warn-001"
    assert len(warehouse.queries) == 1  # every column check in one query

    # a redelivery once the manifest is there (its ledger record lost): no second query
    runtime.store.delete("runs/events-warn-001/snapshot.json")
    run(runtime, "events-warn-001")
    assert capture.events[-1].details["quality"] == stored["quality"]
    assert len(warehouse.queries) == 1


def test_values_outside_the_accepted_ones_and_duplicates_are_counted(
    runtime: LocalRuntime, capture: Capture
) -> None:
    make_events(runtime, 300)
    use_registry(
        runtime,
        """      - accepted_values: {column: kind, values: [click]}
      - unique: [day, kind]""",
    )
    run(runtime, "events-values-001")
    failed = assert_stopped(runtime, capture, "events-values-001")
    outside, duplicates = failed.details["quality"]
    assert outside["observed"] == 150 and "(e.g. 'view')" in outside["message"]
    assert duplicates["observed"] == 286  # 300 rows, 14 (day, kind) pairs
    assert "286 duplicate row(s) beyond the first of each (day, kind)" in duplicates["message"]
    assert "and 1 more" in failed.error


def test_a_column_not_in_the_snapshot_is_named_before_any_query(
    runtime: LocalRuntime, capture: Capture
) -> None:
    make_events(runtime, 10)
    warehouse = use_registry(runtime, "      - min_rows: 1\n      - not_null: [user_id]")
    run(runtime, "events-column-001")
    failed = assert_stopped(runtime, capture, "events-column-001")
    assert failed.details["field"] == "expectations[1].column"
    assert "'user_id' is not a column of the snapshot" in (failed.error or "")
    assert warehouse.queries == []


@pytest.mark.parametrize("value", ["x' OR '1'='1", "click"])
def test_accepted_values_are_parameters_in_the_duckdb_query(
    runtime: LocalRuntime, capture: Capture, value: str
) -> None:
    make_events(runtime, 10)
    warehouse = use_registry(
        runtime, f"      - accepted_values: {{column: kind, values: [{json.dumps(value)}, view]}}"
    )
    run(runtime, "events-param-001")
    [sql] = warehouse.queries
    assert value not in sql and "view" not in sql and "$e0_value_0" in sql
    assert capture.events[-1].status == ("completed" if value == "click" else "failed")
