"""A flapping pipeline (`notify.failures: {after: 2}`) in bot mode against the loopback Slack:
its first failure in a row posts nothing, the second and third are alerted (a red card each),
the first success after them is posted as "recovered" although `on_success` is `never`, the next
success is quiet, and a new first failure is quiet again. Each final event is delivered three
times; the streak comes from the history the notifier writes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mlrelay.config.settings import Settings
from mlrelay.ports.container import use_ports
from mlrelay_tools.local.runtime import LocalRuntime
from tests.fakes.slack import FakeSlack
from tests.helpers import make_runtime
from tests.integration.notifier.notifier_kit import bot_channel, registry_with, run_stages


@pytest.fixture
def runtime(settings: Settings, slack: FakeSlack) -> Iterator[LocalRuntime]:
    registry = registry_with(
        slack_channel="#ml-training", on_success="never", failures={"after": 2}
    )
    yield make_runtime(settings, bot_channel(slack), registry=registry)  # type: ignore[arg-type]
    use_ports(None)


def test_failures_alert_from_the_second_in_a_row_and_the_recovery_is_posted_once(
    runtime: LocalRuntime, slack: FakeSlack
) -> None:
    said: dict[str, list[str]] = {}
    for n, outcome in enumerate(
        ["failed", "failed", "failed", "succeeded", "succeeded", "failed"], start=1
    ):
        run_id = f"penguins-flap-{n}"
        before = len(slack.channel_messages("#ml-training"))
        [*_, final] = run_stages(runtime, run_id, outcome=outcome)
        for _ in range(2):  # the final event delivered twice more
            runtime.ports.publish(final)
        runtime.bus.run_until_idle()
        said[run_id] = [m.text for m in slack.channel_messages("#ml-training")[before:]]

    assert said["penguins-flap-1"] == []  # the first failure in a row: quiet
    for alerted in ("penguins-flap-2", "penguins-flap-3"):
        [card] = said[alerted]
        assert "pipeline.failed" in card and alerted in card
    [recovered] = said["penguins-flap-4"]
    assert "pipeline.succeeded" in recovered
    assert "recovered after 3 failures in a row" in recovered
    assert said["penguins-flap-5"] == []  # on_success: never, and no streak to recover from
    assert said["penguins-flap-6"] == []  # a new streak starts quiet
    cards = slack.channel_messages("#ml-training")
    assert len(cards) == 3 and all(m.thread_ts is None for m in cards)
