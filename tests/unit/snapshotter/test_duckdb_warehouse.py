"""The embedded (DuckDB) backend as the Google one's twin: the built-in `@snapshot_time`
parameter, the manifest's point in time, and the registry's `expected_schema`."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pyarrow.parquet as pq

from mlrelay.contracts import SnapshotRequest
from mlrelay.registry import parse_registry
from mlrelay.stage.envelope import PubsubMessage
from mlrelay_snapshotter.snapshot import snapshot_for_run
from mlrelay_tools.local.runtime import LocalRuntime
from tests.helpers import REGISTRY, Capture

T0 = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
PIPELINES = """
version: 1
pipelines:
  penguins:
    source:
      sql: |-
        SELECT species, year, @snapshot_time AS read_as_of FROM penguins -- not by @island
        WHERE year >= @min_year AND species != '@min_year'
      query_parameters: [min_year]
    parameters: {min_year: 2008}
    template: penguins/penguins_pipeline.yaml
    expected_schema:
      species: string
      year: int64
      read_as_of: timestamp[us, tz=UTC]
  penguins-strict:
    source:
      table: penguins
    template: penguins/penguins_pipeline.yaml
    expected_schema:
      species: string
      bill_length_mm: float
      wingspan_mm: double
"""


def use_registry(runtime: LocalRuntime) -> None:
    runtime.ports._registry = parse_registry(PIPELINES, "reg.yaml", REGISTRY.parent)
    runtime.ports.__dict__.pop("registry", None)


def request(run_id: str, pipeline: str) -> SnapshotRequest:
    return SnapshotRequest(
        run_id=run_id,
        pipeline=pipeline,
        parameters={"min_year": 2008},
        logical_time=T0,
        trigger="schedule",
        accepted_at=T0,
    )


def test_a_query_can_pin_itself_to_the_logical_time_with_snapshot_time(
    runtime: LocalRuntime, capture: Capture
) -> None:
    use_registry(runtime)
    snapshot_for_run(request("penguins-t-001", "penguins"), PubsubMessage(b""), runtime.ports)
    assert capture.types() == ["snapshot.started", "snapshot.completed"]
    manifest = json.loads(
        runtime.store.read("snapshots/penguins/penguins-t-001/manifest.json") or b""
    )
    assert manifest["point_in_time"] == f"@snapshot_time = {T0.isoformat()}"
    assert manifest["source"]["query_parameters"] == {"min_year": 2008}
    [entry] = manifest["files"]
    table = pq.read_table(entry["uri"].removeprefix("file://"))
    assert set(table.column("read_as_of").to_pylist()) == {T0}
    assert table.num_rows == manifest["row_count"] == 344 - 110  # 2007's penguins are out


def test_an_expected_schema_mismatch_is_a_failed_event_naming_each_column(
    runtime: LocalRuntime, capture: Capture
) -> None:
    use_registry(runtime)
    snapshot_for_run(
        request("penguins-s-001", "penguins-strict"), PubsubMessage(b""), runtime.ports
    )
    assert capture.types() == ["snapshot.started", "snapshot.failed"]
    failed = capture.events[-1]
    assert failed.details["field"] == "expected_schema"
    error = failed.error or ""
    assert "bill_length_mm is double, expected float" in error
    assert "wingspan_mm is missing (expected double)" in error
    assert "island (string) is not expected" in error
    assert "species" not in error  # a matching column is not reported
    assert runtime.store.read("snapshots/penguins_strict/penguins-s-001/manifest.json") is None
