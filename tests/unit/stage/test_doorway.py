"""The doorway: a configuration problem redelivers (never rejects), and a message's run id is on
its own log lines only."""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import structlog
from cloudevents.http import CloudEvent

from mlrelay.config.settings import Settings
from mlrelay.contracts import RunRequest, SnapshotRequest
from mlrelay.logs import configure_logging
from mlrelay.ports.container import Ports, use_ports
from mlrelay.stage import keys
from mlrelay.stage.doorway import handle_pubsub_event
from mlrelay.stage.envelope import PubsubMessage
from tests.helpers import RecordingChat, function_client, make_runtime, publish_run, push_body


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    out = io.StringIO()
    configure_logging("json", "DEBUG", stream=out)
    yield out
    configure_logging("console", "INFO")


def parsed(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


@pytest.fixture
def broken_settings(settings: Settings, tmp_path: Path) -> Settings:
    """A release whose registry file does not parse: the messages are fine, the set-up is not."""
    broken = tmp_path / "registry.yaml"
    broken.write_text("pipelines:\n  penguins: [unclosed\n")
    return dataclasses.replace(settings, registry_path=broken)


def test_a_broken_registry_redelivers_valid_runs_and_rejects_none(
    broken_settings: Settings, channel: RecordingChat, log_lines: io.StringIO
) -> None:
    runtime = make_runtime(broken_settings, channel)
    try:
        publish_run(runtime, {"pipeline": "penguins", "dedup_key": "bad-release"})
        stats = runtime.bus.run_until_idle()
    finally:
        use_ports(None)
    attempts = broken_settings.max_delivery_attempts
    assert stats.failed_deliveries == attempts  # each delivery answered "redeliver"
    assert stats.dead_lettered == 1  # reached only through the subscription's attempt limit
    assert list(runtime.store.list(keys.REJECTED)) == []
    [letter] = list(runtime.store.list(keys.DEAD_LETTERS))
    assert "mlrelay-trigger" in letter
    errors = [line for line in parsed(log_lines) if line["message"] == "configuration_error"]
    assert len(errors) == 1  # once per process, however often the message comes back
    assert errors[0]["severity"] == "ERROR"
    assert "registry.yaml:" in errors[0]["problem"] and "mlrelay validate" in errors[0]["fix"]
    assert "redelivered" in errors[0]["outcome"]


def test_a_configuration_error_answers_503_without_a_traceback(
    broken_settings: Settings, channel: RecordingChat, log_lines: io.StringIO
) -> None:
    runtime = make_runtime(broken_settings, channel)
    try:
        client = function_client("trigger", "on_run_request")
        body = RunRequest(pipeline="penguins", dedup_key="ff-broken").to_json()
        first = client.post("/", json=push_body(body))
        second = client.post("/", json=push_body(body))
    finally:
        use_ports(None)
    assert first.status_code == second.status_code == 503  # Pub/Sub push: redeliver
    assert b"configuration error" in first.data
    assert list(runtime.store.list(keys.REJECTED)) == []
    text = log_lines.getvalue()
    assert "Traceback" not in text
    assert [line["message"] for line in parsed(log_lines)].count("configuration_error") == 1


def event_for(data: bytes, message_id: str) -> CloudEvent:
    return CloudEvent(
        {"type": "google.cloud.pubsub.topic.v1.messagePublished", "source": "//pubsub/test"},
        push_body(data) | {"message": push_body(data)["message"] | {"messageId": message_id}},
    )


def test_a_run_id_is_on_its_own_messages_lines_and_not_on_the_next_ones(
    settings: Settings, log_lines: io.StringIO
) -> None:
    use_ports(Ports(settings))
    log = structlog.get_logger()

    def work(request: Any, message: PubsubMessage, ports: Ports) -> None:
        log.info("working", message_seen=message.message_id)

    snapshot = SnapshotRequest(
        run_id="penguins-first-1a2b3c4d",
        pipeline="penguins",
        parameters={},
        logical_time=datetime(2026, 12, 1, tzinfo=UTC),
        trigger="manual",
        accepted_at=datetime(2026, 12, 1, tzinfo=UTC),
    )
    try:
        # two messages in a row on one thread, as a function instance handles them
        handle_pubsub_event(
            event_for(snapshot.to_json(), "m-1"), SnapshotRequest, stage="snapshot", work=work
        )
        handle_pubsub_event(
            event_for(RunRequest(pipeline="penguins").to_json(), "m-2"),
            RunRequest,
            stage="trigger",
            work=work,
        )
    finally:
        use_ports(None)
    by_message = {line.get("message_seen"): line for line in parsed(log_lines)}
    assert by_message["m-1"]["run_id"] == "penguins-first-1a2b3c4d"
    assert "run_id" not in by_message["m-2"]
    assert "logging.googleapis.com/labels" not in by_message["m-2"] or (
        "run_id" not in by_message["m-2"]["logging.googleapis.com/labels"]
    )
    assert structlog.contextvars.get_contextvars() == {}
