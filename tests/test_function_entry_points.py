"""Each service's main.py, served by functions-framework as Cloud Functions serves it, answering
a Pub/Sub push: 2xx acks, 5xx asks Pub/Sub to redeliver."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from functions_framework import create_app

from mlrelay.config.functions import FUNCTIONS
from mlrelay.contracts import RunRequest, SnapshotRequest
from mlrelay.stage.ledger import StageRecord, ledger_key
from mlrelay_tools.local.runtime import LocalRuntime

from .helpers import REPO, Capture


def push_body(data: bytes, attributes: dict[str, str] | None = None) -> dict[str, Any]:
    """The JSON a Pub/Sub push subscription POSTs (functions-framework turns it into the
    CloudEvent a 2nd-gen function receives)."""
    return {
        "message": {
            "data": base64.b64encode(data).decode(),
            "attributes": attributes or {},
            "messageId": "9001",
            "publishTime": "2026-11-25T06:00:00.000Z",
        },
        "subscription": "projects/local/subscriptions/mlrelay-trigger",
    }


def client_for(service: str, target: str) -> Any:
    source = REPO / "services" / service / "main.py"
    return create_app(target, str(source), "cloudevent").test_client()


@pytest.mark.parametrize("spec", FUNCTIONS, ids=lambda s: s.name)
def test_every_main_exposes_the_entry_point_the_deploy_uses(spec: Any) -> None:
    text = (REPO / "services" / spec.service_dir / "main.py").read_text()
    assert f"{spec.entry_point} = functions_framework.cloud_event(entry.{spec.entry_point})" in text
    assert (REPO / "services" / spec.service_dir / "requirements.txt").is_file()


def test_trigger_function_accepts_a_pubsub_push(runtime: LocalRuntime, capture: Capture) -> None:
    client = client_for("trigger", "on_run_request")
    body = RunRequest(pipeline="penguins", dedup_key="ff-1").to_json()
    response = client.post("/", json=push_body(body))
    assert response.status_code == 200
    [snapshot_msg] = [m for t, m in capture.messages if t == runtime.settings.topics.snapshots]
    request = SnapshotRequest.model_validate(json.loads(snapshot_msg.data))
    assert request.pipeline == "penguins"
    assert snapshot_msg.attributes["run_id"] == request.run_id
    assert capture.types() == ["trigger.accepted"]


def test_trigger_function_acks_and_rejects_garbage(runtime: LocalRuntime, capture: Capture) -> None:
    response = client_for("trigger", "on_run_request").post("/", json=push_body(b"\x00\xff"))
    assert response.status_code == 200  # acked: redelivering garbage cannot help
    assert capture.types() == ["trigger.rejected"]


def test_snapshotter_function_answers_500_while_another_delivery_holds_the_run(
    runtime: LocalRuntime, capture: Capture
) -> None:
    now = datetime.now(UTC)
    request = SnapshotRequest(
        run_id="penguins-held-1",
        pipeline="penguins",
        parameters={"min_year": 2007},
        logical_time=now,
        trigger="manual",
        accepted_at=now,
    )
    claim = StageRecord(
        "snapshot", "running", now.isoformat(), (now + timedelta(minutes=5)).isoformat()
    )
    runtime.store.create(ledger_key(request.run_id, "snapshot"), claim.to_json())
    client = client_for("snapshotter", "on_snapshot_request")
    response = client.post("/", json=push_body(request.to_json(), request.attributes()))
    assert response.status_code == 500  # Pub/Sub will redeliver later
    assert capture.events == []


def test_structured_cloudevent_reaches_the_notifier(runtime: LocalRuntime, channel: Any) -> None:
    from mlrelay.contracts import LifecycleEvent

    event = LifecycleEvent(
        run_id="penguins-a-1",
        pipeline="penguins",
        stage="pipeline",
        status="failed",
        summary="pipeline failed at train",
        error="OOM",
    )
    envelope = {
        "specversion": "1.0",
        "type": "google.cloud.pubsub.topic.v1.messagePublished",
        "source": "//pubsub.googleapis.com/projects/local/topics/mlrelay-lifecycle",
        "id": "77",
        "datacontenttype": "application/json",
        "data": push_body(event.to_json(), event.attributes()),
    }
    client = client_for("notifier", "on_lifecycle_event")
    response = client.post(
        "/", json=envelope, headers={"Content-Type": "application/cloudevents+json"}
    )
    assert response.status_code == 200
    assert channel.posts == [
        "[FAILED] penguins · pipeline.failed · run penguins-a-1 — "
        "pipeline failed at train\n    error: OOM"
    ]
