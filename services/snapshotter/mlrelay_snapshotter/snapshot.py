"""Take a run's snapshot once: export, write the manifest last, then move `latest`."""

from __future__ import annotations

import time
from typing import Any

import structlog

from mlrelay.contracts import (
    DeployRequest,
    LifecycleEvent,
    SnapshotRef,
    SnapshotRequest,
    utc_now,
)
from mlrelay.ports.container import Ports
from mlrelay.ports.protocols import SnapshotPlan, Warehouse
from mlrelay.registry import ExpectationSpec, PipelineSpec
from mlrelay.stage import keys
from mlrelay.stage.echoes import pass_on, publish_event, re_request_of
from mlrelay.stage.envelope import PubsubMessage
from mlrelay.stage.ledger import run_once
from mlrelay_snapshotter.expectations import warnings
from mlrelay_snapshotter.manifest import SnapshotManifest, build_manifest, move_latest_pointer
from mlrelay_snapshotter.quality_gate import gate_snapshot, previous_row_count
from mlrelay_snapshotter.schema_check import check_expected_schema
from mlrelay_snapshotter.warehouses import build_warehouse

log = structlog.get_logger()


def plan_snapshot(request: SnapshotRequest, spec: PipelineSpec, dataset: str) -> SnapshotPlan:
    source = spec.source
    return SnapshotPlan(
        source_kind=source.kind,
        table=source.table,
        sql=source.sql,
        query_parameters={name: request.parameters[name] for name in source.query_parameters},
        prefix=keys.snapshot_prefix(dataset, request.run_id),
        job_id=f"mlrelay-{request.run_id}",
        snapshot_time=request.logical_time,
    )


def describe_source(plan: SnapshotPlan) -> dict[str, Any]:
    if plan.source_kind == "table":
        return {"kind": "table", "table": plan.table}
    return {"kind": "query", "sql": plan.sql, "query_parameters": plan.query_parameters}


def export_with_manifest(
    request: SnapshotRequest,
    plan: SnapshotPlan,
    dataset: str,
    warehouse: Warehouse,
    ports: Ports,
    expected_schema: dict[str, str] | None = None,
    expectations: list[ExpectationSpec] | None = None,
) -> SnapshotManifest:
    """Export, check the schema and the expectations, and write the manifest create-only; a
    manifest already there means an earlier delivery finished the data (and measured it), and
    is reused with its quality results."""
    store = ports.store
    manifest_key = plan.prefix + "manifest.json"
    existing = store.read(manifest_key)
    if existing is not None:
        log.info("snapshot_manifest_found", manifest_key=manifest_key)
        manifest = SnapshotManifest.from_json(existing)
    else:
        export = warehouse.export_snapshot(plan, store)
        check_expected_schema(expected_schema, export.schema)
        snapshot_time = request.logical_time or utc_now()
        quality = gate_snapshot(
            expectations or [],
            plan=plan,
            store=store,
            export=export,
            warehouse=warehouse,
            previous_rows=previous_row_count(store, dataset, request.run_id, snapshot_time),
            logical_time=snapshot_time,
        )
        manifest = build_manifest(
            run_id=request.run_id,
            pipeline=request.pipeline,
            dataset=dataset,
            source=describe_source(plan),
            snapshot_time=request.logical_time,
            point_in_time=export.point_in_time,
            export=export,
            prefix=plan.prefix,
            store=store,
            quality=quality,
        )
        if not store.create(manifest_key, manifest.to_json()):
            manifest = SnapshotManifest.from_json(store.read(manifest_key) or b"")
    move_latest_pointer(store, dataset, manifest, manifest_key)
    return manifest


def snapshot_for_run(request: SnapshotRequest, message: PubsubMessage, ports: Ports) -> None:
    spec = ports.registry.pipeline(request.pipeline)
    dataset = ports.registry.dataset(request.pipeline)
    plan = plan_snapshot(request, spec, dataset)
    warehouse = ports.warehouse(build_warehouse)
    began = time.perf_counter()

    def work() -> dict[str, Any]:
        ports.publish(
            LifecycleEvent(
                run_id=request.run_id,
                pipeline=request.pipeline,
                stage="snapshot",
                status="started",
                summary=f"snapshot of {describe_source(plan).get('table') or 'query'} started",
                trigger=request.trigger,
            )
        )
        manifest = export_with_manifest(
            request, plan, dataset, warehouse, ports, spec.expected_schema, spec.expectations
        )
        return {
            "quality": manifest.quality,
            "quality_warnings": warnings(manifest.quality),
            "manifest_uri": ports.store.uri(plan.prefix + "manifest.json"),
            "fingerprint": manifest.fingerprint,
            "row_count": manifest.row_count,
            "total_bytes": manifest.total_bytes,
            "file_count": len(manifest.files),
            "duration_seconds": round(time.perf_counter() - began, 3),
            "engine": manifest.engine,
        }

    outcome = run_once(
        ports.store,
        keys.ledger(request.run_id, "snapshot"),
        "snapshot",
        work,
        lease=ports.settings.claim_lease,
    )
    re_request = re_request_of(message)
    if outcome.record.state == "failed":
        publish_event(
            ports,
            outcome,
            LifecycleEvent(
                run_id=request.run_id,
                pipeline=request.pipeline,
                stage="snapshot",
                status="failed",
                summary="snapshot failed",
                error=outcome.record.error,
                trigger=request.trigger,
                figures={"duration_seconds": round(time.perf_counter() - began, 3)},
                details={
                    "field": outcome.record.error_field,
                    **(outcome.record.error_details or {}),
                },
            ),
            re_request,
        )
        return
    result = outcome.result
    ref = SnapshotRef(**{k: result[k] for k in SnapshotRef.model_fields})
    pass_on(
        ports,
        outcome,
        LifecycleEvent(
            run_id=request.run_id,
            pipeline=request.pipeline,
            stage="snapshot",
            status="completed",
            summary=f"snapshot of {ref.row_count} rows in {ref.file_count} file(s)",
            trigger=request.trigger,
            links={"snapshot": ref.manifest_uri},
            figures={
                "rows": ref.row_count,
                "bytes": ref.total_bytes,
                "files": ref.file_count,
                "duration_seconds": result["duration_seconds"],
            },
            details={
                "reused": outcome.reused,
                "fingerprint": ref.fingerprint,
                "quality": result.get("quality", []),
                "quality_warnings": result.get("quality_warnings", []),
            },
        ),
        DeployRequest(
            run_id=request.run_id,
            pipeline=request.pipeline,
            parameters=request.parameters,
            logical_time=request.logical_time,
            trigger=request.trigger,
            requested_by=request.requested_by,
            accepted_at=request.accepted_at,
            snapshot=ref,
        ),
        "pipeline",
        re_request,
    )
    log.info("snapshot_done", reused=outcome.reused, rows=ref.row_count)
