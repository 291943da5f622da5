"""services/notifier/main.py, served by functions-framework as Cloud Functions serves it,
answering a Pub/Sub push: 2xx acks, 5xx asks Pub/Sub to redeliver."""

from __future__ import annotations

from typing import Any

from mlrelay_tools.local.runtime import LocalRuntime
from tests.helpers import function_client, push_body


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
    client = function_client("notifier", "on_lifecycle_event")
    response = client.post(
        "/", json=envelope, headers={"Content-Type": "application/cloudevents+json"}
    )
    assert response.status_code == 200
    assert channel.posts == [
        "[FAILED] penguins · pipeline.failed · run penguins-a-1 — "
        "pipeline failed at train\n    error: OOM"
    ]
