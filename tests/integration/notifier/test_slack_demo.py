"""A full demo run (trigger -> DuckDB snapshot -> kfp.local pipeline) announced in a loopback
Slack, by bot token and by webhook."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from mlrelay.config.settings import Settings
from mlrelay.contracts import RunRequest
from mlrelay.ports.container import use_ports
from tests.fakes.slack import FakeSlack
from tests.helpers import make_runtime
from tests.integration.notifier.notifier_kit import bot_channel, registry_with, webhook_channel

pytestmark = pytest.mark.pipeline


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    fake = FakeSlack().start()
    yield fake
    fake.stop()
    use_ports(None)


def run_demo(settings: Settings, chat: object) -> str:
    runtime = make_runtime(
        settings,
        chat,  # type: ignore[arg-type]
        registry=registry_with(slack_channel="#ml-training"),
    )
    request = RunRequest(
        pipeline="penguins",
        dedup_key="slack-demo",
        parameters={"n_estimators": 20},
        requested_by="alice",
    )
    runtime.ports.publish(request)
    stats = runtime.bus.run_until_idle()
    assert stats.dead_lettered == 0
    [run_id] = {key.split("/")[1] for key in runtime.store.list("runs/")}
    return run_id


def test_demo_run_in_bot_mode_is_one_message_updated_in_place(
    settings: Settings, slack: FakeSlack
) -> None:
    run_id = run_demo(settings, bot_channel(slack))
    assert [c.method for c in slack.calls()] == [
        "chat.postMessage",
        *["chat.update", "chat.postMessage"] * 3,
    ]
    assert all(c.ok for c in slack.calls())
    [parent, *replies] = slack.channel_messages("#ml-training")
    assert parent.updates == 3 and [r.thread_ts for r in replies] == [parent.ts] * 3
    header = parent.blocks[0]["text"]["text"]
    assert header == ":white_check_mark: penguins: succeeded"
    facts = json.dumps(parent.blocks[1])
    assert run_id in facts and "manual by alice" in facts and "344 rows" in facts
    details = json.dumps(parent.attachments)
    assert "`n_estimators=20`" in details and "`accuracy=" in details
    assert "manifest.json" in details  # the snapshot's location (a local file: shown as text)


def test_demo_run_in_webhook_mode_is_one_message_per_status(
    settings: Settings, slack: FakeSlack
) -> None:
    run_demo(settings, webhook_channel(slack))
    texts = [c.body["text"].split(" · ")[1] for c in slack.calls()]
    assert texts == [
        "trigger.accepted",
        "snapshot.completed",
        "pipeline.submitted",
        "pipeline.succeeded",
    ]
    final = slack.calls()[-1].body
    assert final["attachments"][0]["color"] == "#2EB67D"
    assert "344 rows" in json.dumps(final["blocks"])
