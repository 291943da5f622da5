"""The whole flow through the real handlers on the local bus, as `mlrelay run` wires it: the demo
trains a model (kfp.local), and a rerun with the same key does no work again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlrelay.stage.ledger import read_run
from mlrelay_tools.local.runtime import LocalRuntime
from tests.helpers import Capture, RecordingChat, publish_run


def files_under(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


@pytest.mark.pipeline
def test_demo_flow_trains_a_model_and_a_rerun_with_the_same_key_does_no_work_again(
    runtime: LocalRuntime, capture: Capture, channel: RecordingChat
) -> None:
    request = {"pipeline": "penguins", "dedup_key": "demo-1", "parameters": {"n_estimators": 20}}
    publish_run(runtime, request)
    stats = runtime.bus.run_until_idle()
    assert stats.dead_lettered == 0
    assert capture.types() == [
        "trigger.accepted",
        "snapshot.started",
        "snapshot.completed",
        "pipeline.submitted",
        "pipeline.succeeded",
        "promotion.promoted",  # the demo's `promotion:`: the first model serves the endpoint
    ]
    run_id = capture.events[0].run_id
    assert all(e.run_id == run_id for e in capture.events)
    assert capture.events[-1].details["first"] is True
    succeeded = capture.events[-2]
    assert float(succeeded.figures["accuracy"]) > 0.9
    assert succeeded.parameters["n_estimators"] == 20
    ledger = read_run(runtime.store, run_id)
    assert {s: r.state for s, r in ledger.items()} == {
        "trigger": "done",
        "snapshot": "done",
        "pipeline": "done",
    }
    snapshot = ledger["snapshot"].result or {}
    assert snapshot["row_count"] == 344
    manifest_path = Path(snapshot["manifest_uri"].removeprefix("file://"))
    manifest = json.loads(manifest_path.read_text())
    assert manifest["fingerprint"] == snapshot["fingerprint"]
    latest = json.loads((manifest_path.parent.parent / "latest.json").read_text())
    assert latest["run_id"] == run_id
    deploy = ledger["pipeline"].result or {}
    assert deploy["arguments"]["snapshot_fingerprint"] == snapshot["fingerprint"]
    assert Path(deploy["outputs"]["model"]).is_file()
    assert len(channel.posts) == 5  # accepted, snapshot done, submitted, succeeded, promoted
    before_bucket = files_under(runtime.store.root)
    pipeline_runs = runtime.settings.home / "pipeline-runs"
    before_runs = files_under(pipeline_runs)

    capture.events.clear()
    publish_run(runtime, request)
    runtime.bus.run_until_idle()
    assert capture.events[0].run_id == run_id
    assert capture.events[-1].event_type == "pipeline.succeeded"
    assert all(e.details.get("reused") for e in capture.events if e.status != "submitted")
    assert files_under(pipeline_runs) == before_runs  # no second pipeline run
    after_bucket = files_under(runtime.store.root)
    snapshot_files = {k: v for k, v in before_bucket.items() if k.startswith("snapshots/")}
    assert {k: after_bucket[k] for k in snapshot_files} == snapshot_files  # no second export
    assert len(channel.posts) == 5  # no second Slack message for the same (run, status)
