"""The Google path of the bus against Google's Pub/Sub emulator: the publisher adapter, the
`mlrelay trigger` command and the trigger handler publishing with the real client."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mlrelay.adapters.local_folder import LocalFolderStore
from mlrelay.config.settings import Settings
from mlrelay.config.topics import Topics
from mlrelay.contracts import RunRequest, SnapshotRequest
from mlrelay.ports.container import Ports, use_ports
from mlrelay.stage.envelope import PubsubMessage, to_cloudevent
from tests.helpers import REGISTRY

PROJECT = "mlrelay-test"


@pytest.fixture(scope="module")
def subscriptions(pubsub: str) -> dict[str, str]:
    """One pull subscription per topic, so the test can read what was published."""
    from google.cloud import pubsub_v1

    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    subs = {}
    for topic in Topics().all():
        topic_path = publisher.topic_path(PROJECT, topic)
        publisher.create_topic(name=topic_path)
        sub_path = subscriber.subscription_path(PROJECT, f"{topic}-test")
        subscriber.create_subscription(name=sub_path, topic=topic_path)
        subs[topic] = sub_path
    return subs


def pull(subscription: str, expect: int = 1) -> list[Any]:
    from google.cloud import pubsub_v1

    subscriber = pubsub_v1.SubscriberClient()
    received: list[Any] = []
    for _ in range(20):
        response = subscriber.pull(subscription=subscription, max_messages=10, timeout=10)
        received += response.received_messages
        if response.received_messages:
            subscriber.acknowledge(
                subscription=subscription, ack_ids=[m.ack_id for m in response.received_messages]
            )
        if len(received) >= expect:
            break
    return received


def test_trigger_command_publishes_a_run_request(
    subscriptions: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlrelay_tools.cli.main import cli

    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", PROJECT)
    monkeypatch.setenv("MLRELAY_REGISTRY", str(REGISTRY))
    result = CliRunner().invoke(
        cli, ["trigger", "penguins", "--param", "n_estimators=50", "--dedup-key", "nightly-1"]
    )
    assert result.exit_code == 0, result.output
    [received] = pull(subscriptions["mlrelay-runs"])
    request = RunRequest.model_validate(json.loads(received.message.data))
    assert request.parameters == {"n_estimators": 50}
    assert request.dedup_key == "nightly-1"
    assert dict(received.message.attributes) == {
        "event_type": "run_request",
        "schema_version": "1",
        "pipeline": "penguins",
    }


def test_trigger_command_logs_on_stderr_with_dash_v_and_prints_one_line_without(
    subscriptions: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import structlog

    from mlrelay_tools.cli.main import cli

    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", PROJECT)
    monkeypatch.setenv("MLRELAY_REGISTRY", str(REGISTRY))
    structlog.reset_defaults()  # as in a fresh process: structlog's default prints to stdout
    quiet = CliRunner().invoke(cli, ["trigger", "penguins", "--dedup-key", "quiet-1"])
    assert quiet.exit_code == 0, quiet.output
    assert quiet.stdout.startswith("published run request for penguins to mlrelay-runs")
    assert len(quiet.stdout.splitlines()) == 1 and quiet.stderr == ""
    loud = CliRunner().invoke(cli, ["trigger", "penguins", "--dedup-key", "loud-1", "-v"])
    assert loud.exit_code == 0, loud.output
    assert "level='info' event='message_published'" in loud.stderr
    assert len(loud.stdout.splitlines()) == 1
    assert len(pull(subscriptions["mlrelay-runs"], expect=2)) == 2


def test_trigger_command_refuses_a_forbidden_override_before_publishing(
    subscriptions: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlrelay_tools.cli.main import cli

    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", PROJECT)
    monkeypatch.setenv("MLRELAY_REGISTRY", str(REGISTRY))
    result = CliRunner().invoke(cli, ["trigger", "penguins", "--param", "test_fraction=0.9"])
    assert result.exit_code == 1
    assert "parameters.test_fraction: may not be overridden" in result.output


def test_trigger_handler_publishes_through_real_pubsub(
    subscriptions: dict[str, str], tmp_path: Path
) -> None:
    from mlrelay.adapters.pubsub_publisher import PubSubPublisher
    from mlrelay_trigger.entry import on_run_request

    settings = Settings(mode="google", project=PROJECT, bucket="unused", registry_path=REGISTRY)
    use_ports(
        Ports(
            settings,
            publisher=PubSubPublisher(PROJECT),
            store=LocalFolderStore(tmp_path / "bucket"),
        )
    )
    try:
        message = PubsubMessage(
            RunRequest(pipeline="penguins", dedup_key="g1").to_json(), message_id="1"
        )
        on_run_request(to_cloudevent(message, f"projects/{PROJECT}/topics/mlrelay-runs"))
    finally:
        use_ports(None)
    [snap] = pull(subscriptions["mlrelay-snapshots"])
    request = SnapshotRequest.model_validate(json.loads(snap.message.data))
    assert snap.message.attributes["run_id"] == request.run_id
    [accepted] = pull(subscriptions["mlrelay-lifecycle"])
    assert accepted.message.attributes["event_type"] == "lifecycle.trigger.accepted"
