"""The Google snapshot engine against real protocol peers: the official BigQuery and Storage Read
clients against local-bigquery, the official GCS client and pyarrow's GcsFileSystem against
fake-gcs-server. Both snapshot modes: `export` (query job -> extract job, server-side) and
`stream` (Storage Read API -> Parquet written by mlrelay)."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pyarrow.parquet as pq
import pytest

from mlrelay.adapters.gcs_store import GcsStore
from mlrelay.contracts import SnapshotRequest
from mlrelay.errors import TransientError
from mlrelay.ports.container import Ports
from mlrelay.ports.protocols import ExportResult, ObjectStore, SnapshotPlan
from mlrelay.stage.envelope import PubsubMessage
from mlrelay_snapshotter.snapshot import snapshot_for_run
from mlrelay_snapshotter.warehouses import build_warehouse
from tests.integration.google_backend import PROJECT, bigquery_client, google_ports, new_bucket
from tests.integration.peers import BigQueryPeer

REGISTRY = """
version: 1
pipelines:
  orders:
    source:
      table: shop.orders
    template: penguins/penguins_pipeline.yaml
  big-orders:
    source:
      sql: >-
        SELECT id, amount, placed_at FROM `shop.orders` FOR SYSTEM_TIME AS OF @snapshot_time
        WHERE amount >= @min_amount ORDER BY id
      query_parameters: [min_amount]
    parameters:
      min_amount: 100.0
    overridable: [min_amount]
    template: penguins/penguins_pipeline.yaml
  gone:
    source:
      table: shop.orders_v2
    template: penguins/penguins_pipeline.yaml
  typed:
    source:
      sql: SELECT id, amount, placed_at FROM `shop.orders`
    expected_schema:
      id: int64
      amount: double
      placed_at: timestamp[us, tz=UTC]
    template: penguins/penguins_pipeline.yaml
"""
SEED = """
CREATE OR REPLACE TABLE shop.orders AS
SELECT 1 AS id, DATETIME '2026-01-02 03:04:05.123456' AS placed_local,
       TIMESTAMP '2026-01-02 03:04:05.123456+00' AS placed_at, NUMERIC '12345.123456789' AS amount,
       BIGNUMERIC '1.123456789012345678' AS exact, JSON '{"a": [1, 2]}' AS payload,
       [1, 2, 3] AS items, STRUCT(1 AS x, 'y' AS y) AS shipping
UNION ALL
SELECT 2, DATETIME '2026-01-03 00:00:00', TIMESTAMP '2026-01-03 00:00:00+00', NUMERIC '99.5',
       BIGNUMERIC '2', JSON '{"b": null}', [4], STRUCT(2 AS x, 'z' AS y)
UNION ALL
SELECT 3, DATETIME '2026-01-04 00:00:00', TIMESTAMP '2026-01-04 00:00:00+00', NUMERIC '100',
       BIGNUMERIC '3', JSON '[]', CAST([] AS ARRAY<INT64>), STRUCT(3 AS x, 'w' AS y)
"""


@pytest.fixture(scope="module")
def seeded(bq: BigQueryPeer) -> datetime:
    """shop.orders: 3 rows until the returned instant, 5 after it."""
    client = bigquery_client(bq)
    client.create_dataset("shop", exists_ok=True)
    client.query(SEED).result()
    time.sleep(1.2)
    between = datetime.now(UTC)
    time.sleep(1.2)
    client.query(
        "INSERT INTO shop.orders (id, amount) VALUES (4, NUMERIC '500'), (5, NUMERIC '600')"
    ).result()
    return between


def request(run_id: str, pipeline: str, at: datetime, **parameters: Any) -> SnapshotRequest:
    return SnapshotRequest(
        run_id=run_id,
        pipeline=pipeline,
        parameters=parameters,
        logical_time=at,
        trigger="schedule",
        accepted_at=at,
    )


def manifest_of(store: GcsStore, dataset: str, run_id: str) -> dict[str, Any]:
    return json.loads(store.read(f"snapshots/{dataset}/{run_id}/manifest.json") or b"null")


def latest_of(store: GcsStore, dataset: str) -> dict[str, Any]:
    return json.loads(store.read(f"snapshots/{dataset}/latest.json") or b"null")


def read_back(store: GcsStore, manifest: dict[str, Any]) -> Any:
    """The snapshot's rows through pyarrow's own GCS filesystem (not our client)."""
    import pyarrow as pa
    import pyarrow.fs

    url = __import__("os").environ["STORAGE_EMULATOR_HOST"]
    fs = pyarrow.fs.GcsFileSystem(
        endpoint_override=url.removeprefix("http://"),
        scheme="http",
        anonymous=True,
        project_id=PROJECT,
    )
    tables = [
        pq.read_table(f["uri"].removeprefix("gs://"), filesystem=fs) for f in manifest["files"]
    ]
    return pa.concat_tables(tables)


def snapshot(ports: Ports, req: SnapshotRequest) -> None:
    snapshot_for_run(req, PubsubMessage(b""), ports)


@pytest.mark.parametrize("mode", ["export", "stream"])
def test_table_snapshot_is_read_as_of_the_logical_time_with_faithful_types(
    bq: BigQueryPeer,
    seeded: datetime,
    mode: str,
) -> None:
    store = new_bucket()
    ports, published = google_ports(bq, store, REGISTRY, mode=mode)
    run_id = f"orders-{mode}-001"
    snapshot(ports, request(run_id, "orders", seeded))

    manifest = manifest_of(store, "orders", run_id)
    assert manifest["row_count"] == 3  # the two rows inserted after the logical time are not in
    assert manifest["point_in_time"] == f"FOR SYSTEM_TIME AS OF {seeded.isoformat()}"
    assert manifest["engine"] == f"bigquery {mode}"
    expected_jobs = [f"mlrelay-{run_id}-query-1"]
    if mode == "export":
        expected_jobs.append(f"mlrelay-{run_id}-extract-1")
    assert manifest["job_ids"] == expected_jobs
    source = {c["name"]: c["type"] for c in manifest["source_schema"]}
    assert source == {
        "id": "INTEGER",
        "placed_local": "DATETIME",
        "placed_at": "TIMESTAMP",
        "amount": "NUMERIC",
        "exact": "BIGNUMERIC",
        "payload": "JSON",
        "items": "ARRAY<INTEGER>",
        "shipping": "STRUCT<x INTEGER, y STRING>",
    }
    files = {c["name"]: c["type"] for c in manifest["schema"]}
    assert files["placed_local"] == "timestamp[us]"  # DATETIME: no time zone
    assert files["placed_at"] == "timestamp[us, tz=UTC]"  # TIMESTAMP: an instant
    assert files["amount"] == "decimal128(38, 9)"  # NUMERIC: exact, never a float
    assert files["exact"].startswith("decimal")
    assert files["items"].startswith("list<") and files["items"].endswith(": int64>")
    assert files["shipping"] == "struct<x: int64, y: string>"

    table = read_back(store, manifest)
    assert {c: str(t) for c, t in zip(table.column_names, table.schema.types, strict=True)} == files
    rows = sorted(table.to_pylist(), key=lambda r: r["id"])
    assert [r["id"] for r in rows] == [1, 2, 3]
    assert rows[0]["amount"] == Decimal("12345.123456789")
    assert rows[0]["placed_local"] == datetime(2026, 1, 2, 3, 4, 5, 123456)
    assert rows[0]["placed_at"] == datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    assert json.loads(rows[0]["payload"]) == {"a": [1, 2]}
    assert rows[0]["items"] == [1, 2, 3] and rows[2]["items"] == []
    assert rows[1]["shipping"] == {"x": 2, "y": "z"}

    stored = {o.key: o for o in store.objects(f"snapshots/orders/{run_id}/part-")}
    for entry in manifest["files"]:
        key = entry["uri"].removeprefix(f"gs://{store.bucket.name}/")
        data = store.read(key) or b""
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
        assert len(data) == entry["size_bytes"] == stored[key].size_bytes
        assert entry["crc32c"] == stored[key].crc32c  # the same checksum GCS computed
    assert latest_of(store, "orders")["run_id"] == run_id
    assert published.types() == ["snapshot.started", "snapshot.completed"]
    done = published.events()[-1]
    assert done.figures["rows"] == 3 and int(done.figures["bytes"]) > 0
    assert "duration_seconds" in done.figures


def test_query_snapshot_binds_parameters_and_the_snapshot_time(
    bq: BigQueryPeer,
    seeded: datetime,
) -> None:
    store = new_bucket()
    ports, published = google_ports(bq, store, REGISTRY)
    snapshot(ports, request("big-orders-001", "big-orders", seeded, min_amount=100.0))
    manifest = manifest_of(store, "big_orders", "big-orders-001")
    assert manifest["source"]["query_parameters"] == {"min_amount": 100.0}
    assert manifest["point_in_time"] == f"@snapshot_time = {seeded.isoformat()}"
    assert [r["id"] for r in read_back(store, manifest).to_pylist()] == [1, 3]

    after = datetime.now(UTC)
    snapshot(ports, request("big-orders-002", "big-orders", after, min_amount=100.0))
    later = manifest_of(store, "big_orders", "big-orders-002")
    assert [r["id"] for r in read_back(store, later).to_pylist()] == [1, 3, 4, 5]
    assert latest_of(store, "big_orders")["run_id"] == "big-orders-002"

    hostile = "100 OR TRUE; DROP TABLE shop.orders; --"
    snapshot(ports, request("big-orders-003", "big-orders", after, min_amount=hostile))
    failed = published.events()[-1]
    assert failed.event_type == "snapshot.failed" and failed.details["field"] == "source"
    rows = bigquery_client(bq).query("SELECT count(*) AS n FROM shop.orders").result()
    assert next(iter(rows))["n"] == 5


def test_stream_mode_writes_the_row_groups_file_sizes_and_compression_asked_for(
    bq: BigQueryPeer,
    seeded: datetime,
) -> None:
    store = new_bucket()
    ports, _ = google_ports(
        bq, store, REGISTRY, mode="stream", row_group_rows=2, file_megabytes=1, compression="gzip"
    )
    snapshot(ports, request("orders-rg-001", "orders", datetime.now(UTC)))
    manifest = manifest_of(store, "orders", "orders-rg-001")
    assert manifest["row_count"] == 5
    [entry] = manifest["files"]
    with store.open_read(entry["uri"].removeprefix(f"gs://{store.bucket.name}/")) as handle:
        meta = pq.ParquetFile(handle).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [2, 2, 1]
    assert meta.row_group(0).column(0).compression == "GZIP"


def test_a_duplicate_snapshot_request_does_no_second_export(
    bq: BigQueryPeer,
    seeded: datetime,
) -> None:
    store = new_bucket()
    ports, published = google_ports(bq, store, REGISTRY)
    req = request("orders-dup-001", "orders", seeded)
    snapshot(ports, req)
    prefix = "snapshots/orders/orders-dup-001/"
    first = {o.key: o.generation for o in store.objects(prefix)}
    snapshot(ports, req)  # the redelivered message: the ledger answers
    assert {o.key: o.generation for o in store.objects(prefix)} == first
    # ... and the first delivery's messages are out (its marker): nothing is re-emitted
    assert published.types().count("snapshot.completed") == 1
    assert published.events()[-1].details["reused"] is False

    # even past the ledger (its claim lost), the deterministic job ids re-attach: no new job
    warehouse = ports.warehouse(build_warehouse)
    plan = SnapshotPlan("table", "shop.orders", None, {}, prefix, "mlrelay-orders-dup-001", seeded)
    again = warehouse.export_snapshot(plan, store)
    assert again.job_ids == ["mlrelay-orders-dup-001-query-1", "mlrelay-orders-dup-001-extract-1"]
    assert {o.key: o.generation for o in store.objects(prefix)} == first
    jobs = [j.job_id for j in bigquery_client(bq).list_jobs() if "orders-dup-001" in j.job_id]
    assert sorted(jobs) == sorted(again.job_ids)


class CrashAfterExport:
    """Lets BigQuery write the data, then dies before the manifest, like a killed instance."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def export_snapshot(self, plan: SnapshotPlan, store: ObjectStore) -> ExportResult:
        self.inner.export_snapshot(plan, store)
        raise TransientError("instance terminated")


def test_a_crash_between_data_and_manifest_leaves_latest_alone_and_the_retry_completes(
    bq: BigQueryPeer,
    seeded: datetime,
) -> None:
    store = new_bucket()
    ports, published = google_ports(bq, store, REGISTRY)
    snapshot(ports, request("orders-old-001", "orders", seeded))
    warehouse = ports.warehouse(build_warehouse)
    ports.use_warehouse(CrashAfterExport(warehouse))
    newer = request("orders-new-001", "orders", seeded + timedelta(seconds=1))
    with pytest.raises(TransientError):
        snapshot(ports, newer)
    prefix = "snapshots/orders/orders-new-001/"
    data = {o.key: o.generation for o in store.objects(prefix)}
    assert data  # the data is there...
    assert store.read(prefix + "manifest.json") is None  # ...but nothing looks complete
    assert latest_of(store, "orders")["run_id"] == "orders-old-001"
    assert store.read("runs/orders-new-001/snapshot.json") is None  # the claim was released

    ports.use_warehouse(warehouse)
    snapshot(ports, newer)
    manifest = manifest_of(store, "orders", "orders-new-001")
    assert manifest["job_ids"][-1] == "mlrelay-orders-new-001-extract-1"  # re-attached
    assert {o.key: o.generation for o in store.objects(prefix + "part-")} == {
        k: g for k, g in data.items() if "/part-" in k
    }
    assert latest_of(store, "orders")["run_id"] == "orders-new-001"
    assert published.types()[-1] == "snapshot.completed"


def test_a_missing_table_is_a_failed_event_naming_it(
    bq: BigQueryPeer,
    seeded: datetime,
) -> None:
    store = new_bucket()
    ports, published = google_ports(bq, store, REGISTRY)
    snapshot(ports, request("gone-001", "gone", seeded))
    assert published.types() == ["snapshot.started", "snapshot.failed"]
    failed = published.events()[-1]
    assert "orders_v2" in (failed.error or "") and failed.details["field"] == "source"
    assert "duration_seconds" in failed.figures
    assert store.read("snapshots/gone/latest.json") is None


def test_an_expected_schema_mismatch_fails_naming_the_columns(
    bq: BigQueryPeer,
    seeded: datetime,
) -> None:
    store = new_bucket()
    ports, published = google_ports(bq, store, REGISTRY)
    snapshot(ports, request("typed-001", "typed", seeded))
    failed = published.events()[-1]
    assert failed.event_type == "snapshot.failed"
    assert failed.details["field"] == "expected_schema"
    assert "amount is decimal128(38, 9), expected double" in (failed.error or "")
    assert store.read("snapshots/typed/typed-001/manifest.json") is None


def test_the_entry_point_snapshots_on_google_and_asks_for_the_deploy(
    bq: BigQueryPeer,
    seeded: datetime,
) -> None:
    """The function's own doorway with a Pub/Sub CloudEvent, ports built from google settings."""
    from mlrelay.ports.container import use_ports
    from mlrelay.stage.envelope import to_cloudevent
    from mlrelay_snapshotter.entry import on_snapshot_request

    store = new_bucket()
    ports, published = google_ports(bq, store, REGISTRY)
    req = request("orders-entry-001", "orders", seeded)
    message = PubsubMessage(req.to_json(), req.attributes(), message_id="m-1")
    use_ports(ports)
    try:
        on_snapshot_request(to_cloudevent(message, f"projects/{PROJECT}/topics/mlrelay-snapshots"))
    finally:
        use_ports(None)
    assert published.types() == ["snapshot.started", "snapshot.completed"]
    [deploy] = [
        json.loads(d) for _, d, a in published.messages if a["event_type"] == "deploy_request"
    ]
    assert deploy["snapshot"]["manifest_uri"] == store.uri(
        "snapshots/orders/orders-entry-001/manifest.json"
    )
    assert deploy["snapshot"]["row_count"] == 3
