"""services/trigger/main.py, served by functions-framework as Cloud Functions serves it,
answering a Pub/Sub push: 2xx acks, 5xx asks Pub/Sub to redeliver."""

from __future__ import annotations

import json

from mlrelay.contracts import RunRequest, SnapshotRequest
from mlrelay_tools.local.runtime import LocalRuntime
from tests.helpers import Capture, function_client, push_body


def test_trigger_function_accepts_a_pubsub_push(runtime: LocalRuntime, capture: Capture) -> None:
    client = function_client("trigger", "on_run_request")
    body = RunRequest(pipeline="penguins", dedup_key="ff-1").to_json()
    response = client.post("/", json=push_body(body))
    assert response.status_code == 200
    [snapshot_msg] = [m for t, m in capture.messages if t == runtime.settings.topics.snapshots]
    request = SnapshotRequest.model_validate(json.loads(snapshot_msg.data))
    assert request.pipeline == "penguins"
    assert snapshot_msg.attributes["run_id"] == request.run_id
    assert capture.types() == ["trigger.accepted"]


def test_trigger_function_acks_and_rejects_garbage(runtime: LocalRuntime, capture: Capture) -> None:
    response = function_client("trigger", "on_run_request").post("/", json=push_body(b"\x00\xff"))
    assert response.status_code == 200  # acked: redelivering garbage cannot help
    assert capture.types() == ["trigger.rejected"]


def test_attempts_function_rejects_a_retry_of_a_running_run_and_keeps_it_for_the_commands_topic(
    runtime: LocalRuntime, capture: Capture
) -> None:
    from datetime import UTC, datetime

    from mlrelay.contracts import RunCommand
    from mlrelay.stage import keys

    client = function_client("trigger", "on_run_request")
    assert (
        client.post(
            "/", json=push_body(RunRequest(pipeline="penguins", dedup_key="r-1").to_json())
        ).status_code
        == 200
    )
    [run_id] = {e.run_id for e in capture.events}
    retry = RunCommand(
        action="retry",
        run_id=run_id,
        pipeline="penguins",
        requested_by="cli:alice",
        requested_at=datetime(2026, 3, 1, tzinfo=UTC),
        source="cli",
        action_key=f"{run_id}/retry/{'a' * 16}",
    )
    response = function_client("trigger", "on_run_command").post(
        "/", json=push_body(retry.to_json(), retry.attributes())
    )
    assert response.status_code == 200  # acked: the run is still running, asking again won't help
    [rejected] = [e for e in capture.events if e.status == "rejected"]
    assert "is running" in (rejected.error or "")
    [kept] = runtime.store.list(keys.REJECTED)
    assert (
        json.loads(runtime.store.read(kept) or b"{}")["topic"] == runtime.settings.topics.commands
    )
