"""Bot mode, a run retried: the original's card lists the attempt, its thread says who retried
it, and the attempt's own message is a reply in the same thread (updated there as it moves on).
The real trigger makes the attempt from a RunCommand on the local bus; the loopback Slack takes
the posts; the attempt's later stages are driven as the stages would (ledger, then event)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from mlrelay.config.settings import Settings
from mlrelay.contracts import LifecycleEvent, RunCommand
from mlrelay.stage import keys
from mlrelay.stage.ledger import StageRecord
from tests.fakes.slack import FakeSlack
from tests.helpers import make_runtime
from tests.integration.notifier.notifier_kit import bot_channel, registry_with, run_stages


def held(handler: Any) -> Any:
    """The snapshotter's subscription holds the attempt's request: this test drives its stages."""
    return lambda event: None


def test_a_retried_run_card_says_so_and_the_attempt_posts_in_the_same_thread(
    settings: Settings, slack: FakeSlack
) -> None:
    runtime = make_runtime(
        settings,
        bot_channel(slack),  # type: ignore[arg-type]
        registry=registry_with(slack_channel="#ml-training", on_success="always"),
        wrap={"mlrelay-snapshotter": held},
    )
    original = "penguins-late-1"
    run_stages(runtime, original, outcome="failed")
    [parent] = [m for m in slack.channel_messages("#ml-training") if m.thread_ts is None]
    assert parent.blocks[0]["text"]["text"] == ":x: penguins: failed"
    before = len(slack.channel_messages("#ml-training"))

    retry = RunCommand(
        action="retry",
        run_id=original,
        pipeline="penguins",
        requested_by="slack:U0ONCALL",
        requested_at=datetime(2026, 3, 1, 9, 30, tzinfo=UTC),
        source="slack",
        action_key=f"{original}/retry/{'0' * 16}",
    )
    for _ in range(3):  # delivered three times: one attempt, one `retried`
        runtime.ports.publish(retry)
    runtime.bus.run_until_idle()

    attempt = f"{original}-r2"
    messages = slack.channel_messages("#ml-training")
    assert [m for m in messages if m.thread_ts is None] == [parent]  # no second top-level card
    new = messages[before:]
    assert all(m.thread_ts == parent.ts for m in new)
    said = [m for m in new if "trigger.retried" in m.text]
    assert len(said) == 1
    assert (
        f"retry requested by slack:U0ONCALL at 2026-03-01T09:30:00+00:00 -> attempt {attempt}"
        in said[0].text
    )
    card = json.dumps(parent.blocks, ensure_ascii=False)  # the used-button line, in the card
    assert f"retried by <@U0ONCALL> at 2026-03-01 09:30:00 UTC → attempt {attempt}" in card
    assert parent.blocks[0]["text"]["text"] == ":x: penguins: failed"  # still the failure
    [attempt_card] = [m for m in new if m.blocks and m.blocks[0].get("type") == "header"]
    assert attempt in json.dumps(attempt_card.blocks)

    # the attempt moves on: its message (a reply) is updated, its replies stay in the thread
    began = datetime.now(UTC)
    snapshot = {
        "manifest_uri": f"file:///b/snapshots/penguins/{attempt}/manifest.json",
        "fingerprint": "ab" * 32,
        "row_count": 344,
        "total_bytes": 9000,
        "file_count": 1,
    }
    deploy = {"status": "succeeded", "metrics": {"accuracy": 0.97}, "links": {}}
    base = {"run_id": attempt, "pipeline": "penguins", "trigger": "manual"}
    for stage, result, status in (
        ("snapshot", snapshot, "completed"),
        ("pipeline", deploy, "succeeded"),
    ):
        record = StageRecord(stage, "done", began.isoformat(), result=result)
        runtime.store.write(keys.ledger(attempt, stage), record.to_json())  # type: ignore[arg-type]
        runtime.ports.publish(LifecycleEvent(**base, stage=stage, status=status))  # type: ignore[arg-type]
        runtime.bus.run_until_idle()
    messages = slack.channel_messages("#ml-training")
    assert [m for m in messages if m.thread_ts is None] == [parent]
    assert all(m.thread_ts == parent.ts for m in messages[before:])
    assert attempt_card.updates == 2
    assert attempt_card.blocks[0]["text"]["text"] == ":white_check_mark: penguins: succeeded"
