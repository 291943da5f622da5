"""A snapshot on the embedded warehouse (mlrelay_snapshotter.snapshot with DuckDB): a manifest
with verifiable checksums, bound parameters, `latest.json` that only moves forward, and a crash
between data and manifest that leaves nothing looking complete."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from mlrelay.contracts import SnapshotRequest
from mlrelay.errors import PermanentError, TransientError
from mlrelay.ports.protocols import ExportResult, ObjectStore, SnapshotPlan
from mlrelay.registry import parse_registry
from mlrelay.stage.envelope import PubsubMessage
from mlrelay_snapshotter.duckdb_warehouse import DuckDbWarehouse
from mlrelay_snapshotter.snapshot import snapshot_for_run
from mlrelay_tools.local.runtime import LocalRuntime
from tests.helpers import REGISTRY, Capture

T0 = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)


def request_for(run_id: str, logical_time: datetime = T0, min_year: int = 2007) -> SnapshotRequest:
    return SnapshotRequest(
        run_id=run_id,
        pipeline="penguins",
        parameters={"min_year": min_year},
        logical_time=logical_time,
        trigger="schedule",
        accepted_at=logical_time,
    )


def latest(runtime: LocalRuntime) -> dict[str, str]:
    return json.loads(runtime.store.read("snapshots/penguins/latest.json") or b"{}")


def test_manifest_lists_schema_rows_and_verifiable_checksums(
    runtime: LocalRuntime, capture: Capture
) -> None:
    snapshot_for_run(request_for("penguins-a-001"), PubsubMessage(b""), runtime.ports)
    manifest = json.loads(
        runtime.store.read("snapshots/penguins/penguins-a-001/manifest.json") or b""
    )
    assert manifest["row_count"] == 344
    assert manifest["source"]["query_parameters"] == {"min_year": 2007}
    assert datetime.fromisoformat(manifest["snapshot_time"]) == T0
    assert [c["name"] for c in manifest["schema"]][:2] == ["species", "island"]
    assert {c["name"]: c["type"] for c in manifest["schema"]}["bill_length_mm"] == "double"
    for entry in manifest["files"]:
        path = Path(entry["uri"].removeprefix("file://"))
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]
        assert path.stat().st_size == entry["size_bytes"]
    rows = sum(
        pq.read_metadata(Path(f["uri"].removeprefix("file://"))).num_rows for f in manifest["files"]
    )
    assert rows == 344
    assert latest(runtime)["run_id"] == "penguins-a-001"
    assert capture.types() == ["snapshot.started", "snapshot.completed"]


def test_query_parameters_are_bound_not_formatted(runtime: LocalRuntime, capture: Capture) -> None:
    snapshot_for_run(
        request_for("penguins-b-001", min_year=2009), PubsubMessage(b""), runtime.ports
    )
    [done] = [e for e in capture.events if e.status == "completed"]
    assert done.figures["rows"] == 120  # penguins observed in 2009
    hostile = "2007 OR 1=1; DROP TABLE penguins; --"
    store_plan = SnapshotPlan(
        "query",
        None,
        "SELECT * FROM penguins WHERE year >= @min_year",
        {"min_year": hostile},
        "snapshots/x/r/",
        "job",
    )
    with pytest.raises(PermanentError, match="Could not convert string"):
        DuckDbWarehouse(runtime.settings.warehouse_path).export_snapshot(store_plan, runtime.store)
    with duckdb.connect(str(runtime.settings.warehouse_path), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM penguins").fetchone() == (344,)


class CrashAfterExport:
    """Writes the data, then dies before the manifest, like a function killed mid-stage."""

    def __init__(self, inner: DuckDbWarehouse) -> None:
        self.inner = inner

    def export_snapshot(self, plan: SnapshotPlan, store: ObjectStore) -> ExportResult:
        self.inner.export_snapshot(plan, store)
        raise TransientError("instance terminated")


def test_a_crash_between_data_and_manifest_leaves_latest_alone_and_the_retry_completes(
    runtime: LocalRuntime, capture: Capture
) -> None:
    ports = runtime.ports
    snapshot_for_run(request_for("penguins-old-001"), PubsubMessage(b""), ports)
    warehouse = DuckDbWarehouse(runtime.settings.warehouse_path)
    ports.use_warehouse(CrashAfterExport(warehouse))
    newer = request_for("penguins-new-001", T0 + timedelta(days=7))
    with pytest.raises(TransientError):
        snapshot_for_run(newer, PubsubMessage(b""), ports)
    prefix = "snapshots/penguins/penguins-new-001/"
    assert runtime.store.list(prefix)  # data files are there...
    assert runtime.store.read(prefix + "manifest.json") is None  # ...but nothing looks complete
    assert latest(runtime)["run_id"] == "penguins-old-001"
    assert runtime.store.read("runs/penguins-new-001/snapshot.json") is None  # claim released

    ports.use_warehouse(warehouse)
    snapshot_for_run(newer, PubsubMessage(b""), ports)
    assert latest(runtime)["run_id"] == "penguins-new-001"
    assert runtime.store.read(prefix + "manifest.json") is not None


def test_a_backfill_does_not_move_latest_back_in_time(runtime: LocalRuntime) -> None:
    snapshot_for_run(request_for("penguins-now-001", T0), PubsubMessage(b""), runtime.ports)
    snapshot_for_run(
        request_for("penguins-past-001", T0 - timedelta(days=30)), PubsubMessage(b""), runtime.ports
    )
    assert latest(runtime)["run_id"] == "penguins-now-001"


def test_a_missing_table_is_a_failed_event_not_a_retry(
    runtime: LocalRuntime, capture: Capture, tmp_path: Path
) -> None:
    text = REGISTRY.read_text().replace("FROM penguins", "FROM penguins_v2")
    runtime.ports._registry = parse_registry(text, "reg.yaml", REGISTRY.parent)
    runtime.ports.__dict__.pop("registry", None)
    snapshot_for_run(request_for("penguins-gone-001"), PubsubMessage(b""), runtime.ports)
    assert capture.types() == ["snapshot.started", "snapshot.failed"]
    failed = capture.events[-1]
    assert "penguins_v2" in (failed.error or "") and failed.details["field"] == "source"


def test_a_redelivery_after_the_deploy_started_is_silent_but_a_new_request_is_answered_in_full(
    runtime: LocalRuntime, capture: Capture
) -> None:
    from mlrelay.stage import keys
    from mlrelay.stage.echoes import RE_REQUEST

    request = request_for("penguins-echo-001")
    snapshot_for_run(request, PubsubMessage(b"", message_id="s-1"), runtime.ports)
    runtime.store.create(keys.ledger(request.run_id, "pipeline"), b'{"stage": "pipeline"}')
    runtime.store.create(keys.notification(request.run_id, "snapshot.completed"), b"{}")
    capture.messages.clear()
    capture.events.clear()

    snapshot_for_run(request, PubsubMessage(b"", message_id="s-1"), runtime.ports)
    assert capture.messages == []  # a redelivery: the deployer and the notifier have it

    asked = PubsubMessage(b"", {RE_REQUEST: "m-2"}, message_id="s-2")
    snapshot_for_run(request, asked, runtime.ports)
    topics = [t for t, _ in capture.messages]
    assert topics == [runtime.settings.topics.lifecycle, runtime.settings.topics.deploys]
    assert capture.types() == ["snapshot.completed"] and capture.events[0].details["reused"]
    assert {m.attributes.get(RE_REQUEST) for _, m in capture.messages} == {"m-2"}
