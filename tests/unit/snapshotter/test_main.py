"""services/snapshotter/main.py, served by functions-framework as Cloud Functions serves it,
answering a Pub/Sub push: 2xx acks, 5xx asks Pub/Sub to redeliver."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mlrelay.contracts import SnapshotRequest
from mlrelay.stage import keys
from mlrelay.stage.ledger import StageRecord
from mlrelay_tools.local.runtime import LocalRuntime
from tests.helpers import Capture, function_client, push_body


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
    runtime.store.create(keys.ledger(request.run_id, "snapshot"), claim.to_json())
    client = function_client("snapshotter", "on_snapshot_request")
    response = client.post("/", json=push_body(request.to_json(), request.attributes()))
    assert response.status_code == 500  # Pub/Sub will redeliver later
    assert capture.events == []
