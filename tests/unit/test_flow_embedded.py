"""The real handlers on the local bus, as `mlrelay run` wires them: bad requests rejected and
kept, a redelivery one run, a transient failure retried, a failing handler dead-lettered. (The
demo's full run, pipeline included, is tests/integration/test_flow_embedded.py.)"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from cloudevents.http import CloudEvent

from mlrelay.config.settings import Settings
from mlrelay.contracts import LifecycleEvent, RunRequest
from mlrelay.errors import TransientError
from mlrelay.ports.container import use_ports
from mlrelay.registry import parse_registry
from mlrelay.stage.ledger import list_runs, read_run
from mlrelay_tools.local.runtime import LocalRuntime
from tests.helpers import REGISTRY, Capture, RecordingChat, make_runtime, publish_run


def test_malformed_json_is_rejected_and_kept(
    runtime: LocalRuntime, capture: Capture, channel: RecordingChat
) -> None:
    publish_run(runtime, b"{this is not json")
    stats = runtime.bus.run_until_idle()
    assert stats.failed_deliveries == 0
    [event] = capture.events
    assert event.event_type == "trigger.rejected"
    assert event.error is not None and event.error.startswith("data: is not valid JSON")
    kept = json.loads(runtime.store.read(f"rejected/{event.run_id}.json") or b"")
    assert kept["message"]["data_text"] == "{this is not json"
    assert kept["field"] == "data"
    assert "REJECTED" in channel.posts[0]


@pytest.mark.parametrize(
    ("request_body", "field", "words"),
    [
        ({"pipeline": "fraud"}, "pipeline", "'fraud' is not in the registry (use one of: penguins"),
        (
            {"pipeline": "penguins", "parameters": {"test_fraction": 0.9}},
            "parameters.test_fraction",
            "may not be overridden",
        ),
        (
            {"pipeline": "penguins", "parameters": {"n_estimators": "lots"}},
            "parameters.n_estimators",
            "expected int",
        ),
    ],
)
def test_bad_run_requests_are_rejected_with_a_reason(
    runtime: LocalRuntime, capture: Capture, request_body: dict[str, Any], field: str, words: str
) -> None:
    publish_run(runtime, request_body)
    runtime.bus.run_until_idle()
    assert capture.types() == ["trigger.rejected"]
    event = capture.events[0]
    assert event.details["field"] == field
    assert words in (event.error or "")
    kept = json.loads(runtime.store.read(f"rejected/{event.run_id}.json") or b"")
    assert json.loads(kept["message"]["data_text"]) == request_body
    assert runtime.store.list("runs/") == []  # no run was started


def test_a_redelivered_run_request_without_key_is_one_run(
    runtime: LocalRuntime, capture: Capture
) -> None:
    """The same Pub/Sub message delivered twice (same message id) maps to one run id."""
    from mlrelay.stage.envelope import PubsubMessage, to_cloudevent
    from mlrelay_trigger.entry import on_run_request

    message = PubsubMessage(data=RunRequest(pipeline="penguins").to_json(), message_id="m-42")
    topic = runtime.bus.topic_path(runtime.settings.topics.runs)
    on_run_request(to_cloudevent(message, topic))
    on_run_request(to_cloudevent(message, topic))
    accepted = [e for e in capture.events if e.event_type == "trigger.accepted"]
    # the redelivery finds the first delivery's messages out (its marker): it re-emits nothing
    assert len(accepted) == 1 and accepted[0].details["reused"] is False
    assert "message-m-42" in accepted[0].run_id
    assert list_runs(runtime.store) == [accepted[0].run_id]
    assert read_run(runtime.store, accepted[0].run_id)["trigger"].attempts == 1


def flaky(times: int, calls: list[int]) -> Callable[[Callable[[CloudEvent], None]], Any]:
    def wrap(handler: Callable[[CloudEvent], None]) -> Callable[[CloudEvent], None]:
        def wrapped(event: CloudEvent) -> None:
            calls.append(event.data.get("deliveryAttempt"))
            if len(calls) <= times:
                raise TransientError("warehouse briefly unavailable (503)")
            handler(event)

        return wrapped

    return wrap


def test_a_transient_failure_is_retried_with_backoff(
    settings: Settings, channel: RecordingChat
) -> None:
    calls: list[int] = []
    runtime = make_runtime(settings, channel, wrap={"mlrelay-notifier": flaky(2, calls)})
    try:
        event = LifecycleEvent(
            run_id="penguins-x-1",
            pipeline="penguins",
            stage="snapshot",
            status="completed",
            summary="snapshot of 3 rows",
        )
        runtime.ports.publish(event)
        stats = runtime.bus.run_until_idle()
    finally:
        use_ports(None)
    assert calls == [1, 2, 3]  # the delivery attempt the envelope carries
    assert stats.failed_deliveries == 2 and stats.dead_lettered == 0
    assert channel.posts == [
        "[done] penguins · snapshot.completed · run penguins-x-1 — snapshot of 3 rows"
    ]


def test_an_always_failing_handler_is_dead_lettered_and_reported(
    settings: Settings, channel: RecordingChat
) -> None:
    calls: list[int] = []
    runtime = make_runtime(settings, channel, wrap={"mlrelay-trigger": flaky(99, calls)})
    try:
        publish_run(runtime, {"pipeline": "penguins", "dedup_key": "dl"})
        stats = runtime.bus.run_until_idle()
    finally:
        use_ports(None)
    assert len(calls) == settings.max_delivery_attempts
    assert stats.dead_lettered == 1
    # kept once, under the id of the copy forwarded to the dead-letter topic (as in the cloud,
    # where the dead-letter function keeps what it receives); the bus's record wins (last error)
    [key] = runtime.store.list("deadletters/mlrelay-trigger/")
    stored = json.loads(runtime.store.read(key) or b"")
    assert stored["message"]["data"] == json.dumps({"pipeline": "penguins", "dedup_key": "dl"})
    assert stored["delivery_attempts"] == settings.max_delivery_attempts
    assert "warehouse briefly unavailable" in stored["last_error"]
    assert json.loads(stored["message"]["data"])["dedup_key"] == "dl"
    [post] = channel.posts
    assert post.startswith("[DEAD-LETTER] penguins · delivery.dead_lettered")
    assert "mlrelay-trigger failed 3 deliveries" in post


def test_a_failed_expectation_stops_the_run_before_any_pipeline_starts(
    runtime: LocalRuntime, capture: Capture, channel: RecordingChat
) -> None:
    text = REGISTRY.read_text().replace("- min_rows: 100", "- min_rows: 1000")
    runtime.ports._registry = parse_registry(text, "registry.yaml", REGISTRY.parent)
    runtime.ports.__dict__.pop("registry", None)
    publish_run(runtime, {"pipeline": "penguins", "dedup_key": "gate-1"})
    stats = runtime.bus.run_until_idle()
    assert stats.dead_lettered == 0 and stats.failed_deliveries == 0
    assert capture.types() == ["trigger.accepted", "snapshot.started", "snapshot.failed"]
    failed = capture.events[-1]
    assert failed.error == (
        "expectations[0]: min_rows(1000): 344 rows (fewer than 1000) (fix the data at the "
        "source, or change the expectation in the pipeline's registry entry)"
    )
    assert [q["passed"] for q in failed.details["quality"]] == [False, True, True, True]
    assert set(read_run(runtime.store, failed.run_id)) == {"trigger", "snapshot"}  # no pipeline
    assert not (runtime.settings.home / "pipeline-runs").exists()
    assert runtime.store.read("snapshots/penguins/latest.json") is None
    assert "min_rows(1000): 344 rows" in channel.posts[-1]
