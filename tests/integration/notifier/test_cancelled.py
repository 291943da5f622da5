"""A run stopped by a cancel command, in bot mode against the loopback Slack: one grey
`cancelled` card, a thread reply that is not broadcast (a person stopped it; nothing broke), the
history's summary `cancelled`, and the job's own later report of its end a no-op."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from mlrelay.config.settings import Settings
from mlrelay.contracts import LifecycleEvent
from mlrelay.history import read_summary
from mlrelay.ports.container import use_ports
from mlrelay_tools.local.runtime import LocalRuntime
from tests.fakes.slack import FakeSlack
from tests.helpers import make_runtime
from tests.integration.notifier.notifier_kit import bot_channel, registry_with, run_stages

RUN_ID = "penguins-demo-7"
COMMAND = {
    "action": "cancel",
    "requested_by": "slack:U0ONCALL",
    "requested_at": "2026-11-23T05:30:00+00:00",
    "source": "slack",
}


@pytest.fixture
def runtime(settings: Settings, slack: FakeSlack) -> Iterator[LocalRuntime]:
    runtime = make_runtime(
        settings,
        bot_channel(slack),
        registry=registry_with(slack_channel="#ml-training"),  # type: ignore[arg-type]
    )
    run_stages(runtime, RUN_ID, until="pipeline.submitted")
    yield runtime
    use_ports(None)


def publish(runtime: LocalRuntime, event: LifecycleEvent, times: int = 1) -> None:
    for _ in range(times):
        runtime.ports.publish(event)
    runtime.bus.run_until_idle()


def cancelled() -> LifecycleEvent:
    return LifecycleEvent(
        run_id=RUN_ID,
        pipeline="penguins",
        stage="pipeline",
        status="cancelled",
        summary="pipeline cancelled by slack:U0ONCALL",
        details={"command": COMMAND},
    )


def failed_by_exit_handler() -> LifecycleEvent:
    return LifecycleEvent(
        run_id=RUN_ID,
        pipeline="penguins",
        stage="pipeline",
        status="failed",
        summary="pipeline failed at train-model",
        error="the task was cancelled",
        details={"reported_by": "exit_handler"},
    )


def test_a_cancelled_run_gets_one_grey_card_a_quiet_reply_and_a_cancelled_summary(
    runtime: LocalRuntime, slack: FakeSlack
) -> None:
    before = len(slack.delivered())

    publish(runtime, cancelled(), times=3)

    methods = [c.method for c in slack.delivered()[before:]]
    assert methods == ["chat.update", "chat.postMessage"]  # the card, then its thread reply
    [parent, *replies] = slack.channel_messages("#ml-training")
    assert parent.blocks[0]["text"]["text"] == ":no_entry_sign: penguins: cancelled"
    assert [a["color"] for a in parent.attachments] == ["#616061"]
    assert replies[-1].text.split(" · ")[1] == "pipeline.cancelled"
    assert not replies[-1].broadcast  # not announced to the channel like a failure
    summary = read_summary(runtime.store, "penguins", RUN_ID)
    assert summary is not None and summary.status == "cancelled"
    kept = json.loads(runtime.store.read(f"notifications/{RUN_ID}/message.json") or b"")
    assert kept["status"] == "cancelled"


def test_the_jobs_own_failure_after_the_cancel_is_a_no_op(
    runtime: LocalRuntime, slack: FakeSlack
) -> None:
    publish(runtime, cancelled())
    after_cancel = len(slack.delivered())

    publish(runtime, failed_by_exit_handler())

    assert len(slack.delivered()) == after_cancel
    summary = read_summary(runtime.store, "penguins", RUN_ID)
    assert summary is not None and summary.status == "cancelled"


def test_a_cancel_after_the_job_had_failed_is_a_no_op(
    runtime: LocalRuntime, slack: FakeSlack
) -> None:
    publish(runtime, failed_by_exit_handler())
    after_failure = len(slack.delivered())

    publish(runtime, cancelled())

    assert len(slack.delivered()) == after_failure
    [parent, *_] = slack.channel_messages("#ml-training")
    assert parent.blocks[0]["text"]["text"] == ":x: penguins: failed"
    summary = read_summary(runtime.store, "penguins", RUN_ID)
    assert summary is not None and summary.status == "failed"
