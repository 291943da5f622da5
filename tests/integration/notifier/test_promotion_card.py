"""Promotion on the run's one card, against the loopback Slack (bot mode): the run succeeds, its
model becomes a canary, then is promoted (or rolled back); the same message is updated in place
each time, its status stays succeeded, no second message is posted, and each event delivered 3
times leaves the same card. A failed promotion is also heard in the channel (a broadcast reply).

The events and the run's PromotionRecord are written here as the deployer's promotion flow
writes them (record first, then the event), so the card is rendered from the ledger."""

from __future__ import annotations

import json
from typing import Any

from mlrelay.config.settings import Settings
from mlrelay.contracts import LifecycleEvent
from mlrelay.history import read_summary
from mlrelay.promotion_record import PromotionRecord
from mlrelay.stage import keys
from mlrelay.stage.ledger import StageRecord
from mlrelay_tools.local.runtime import LocalRuntime
from tests.fakes.slack import FakeSlack, Message, block_problem
from tests.integration.notifier.notifier_kit import run_stages
from tests.integration.notifier.test_card_buttons import (
    ONCALL,
    buttons,
    runtime_for,
)

CHAMPION = "penguins-promo-champion"
ASKED = "2026-03-01T09:30:00+00:00"
BY_ONCALL = {"requested_by": f"slack:{ONCALL}", "requested_at": ASKED, "source": "slack"}


def canary_record(run_id: str) -> PromotionRecord:
    return PromotionRecord(
        state="canary",
        pipeline="penguins",
        endpoint="penguins-prod",
        model="projects/p/locations/l/models/penguins@3",
        version_id="3",
        deployed_model_id="222",
        canary_percent=10,
        traffic={"111": 90, "222": 10},
        previous_traffic={"111": 100},
        champion_run_id=CHAMPION,
    )


def event_of(record: PromotionRecord, run_id: str, status: str, **extra: Any) -> LifecycleEvent:
    details: dict[str, Any] = {
        "endpoint": record.endpoint,
        "model": record.model,
        "version_id": record.version_id,
        "deployed_model_id": record.deployed_model_id,
        "traffic": record.traffic,
        "previous_traffic": record.previous_traffic,
        "champion_run_id": record.champion_run_id,
        **extra,
    }
    if status == "canary":
        details |= {"canary_percent": record.canary_percent, "auto_promote_at": None}
    return LifecycleEvent(
        run_id=run_id,
        pipeline="penguins",
        stage="promotion",
        status=status,  # type: ignore[arg-type]
        summary=f"model {status}",
        details=details,
    )


def promote_step(
    runtime: LocalRuntime, run_id: str, record: PromotionRecord, event: LifecycleEvent
) -> None:
    """The flow's step: the record, then its event, delivered 3 times."""
    runtime.store.write(keys.promotion(run_id), record.model_dump_json().encode())
    for _ in range(3):
        runtime.ports.publish(event)
    runtime.bus.run_until_idle()


def tops(slack: FakeSlack) -> list[Message]:
    return [m for m in slack.channel_messages("#ml-training") if m.thread_ts is None]


def the_card(slack: FakeSlack) -> Message:
    [card] = tops(slack)
    assert block_problem(card.blocks) is None
    return card


def model_text(card: Message) -> str:
    [block] = [b for b in card.blocks if b.get("block_id") == "mlrelay_model"]
    return str(block["text"]["text"])


def card_json(card: Message) -> str:
    return json.dumps([card.blocks, card.attachments], sort_keys=True)


def test_one_card_is_updated_in_place_from_succeeded_to_canary_to_promoted(
    settings: Settings, slack: FakeSlack
) -> None:
    runtime = runtime_for(settings, slack, [ONCALL])
    run_id = "penguins-promo-1"
    run_stages(runtime, run_id)
    succeeded = the_card(slack)
    replies = len(slack.channel_messages("#ml-training"))
    updates = succeeded.updates  # the fake's message is updated in place: keep the count
    assert succeeded.blocks[0]["text"]["text"] == ":white_check_mark: penguins: succeeded"
    assert buttons(succeeded) == []

    canary = canary_record(run_id)
    promote_step(runtime, run_id, canary, event_of(canary, run_id, "canary"))
    card = the_card(slack)
    assert card.ts == succeeded.ts and card.updates == updates + 1  # one update, 3x
    assert card.blocks[0]["text"]["text"] == ":white_check_mark: penguins: succeeded"
    assert model_text(card) == (
        ":hatching_chick: *Model* Challenger v3 serves 10 % of `penguins-prod` beside the "
        f"champion (run `{CHAMPION}`, 90 %)"
    )
    assert buttons(card) == [("mlrelay_promote", run_id), ("mlrelay_rollback", run_id)]
    assert "*Metrics* `accuracy=0.97`" in card_json(card)  # still the run's success card
    as_canary = card_json(card)

    promoted = canary.model_copy(
        update={
            "state": "promoted",
            "traffic": {"222": 100},
            "command": {"action": "promote", **BY_ONCALL},
        }
    )
    promote_step(
        runtime,
        run_id,
        promoted,
        event_of(promoted, run_id, "promoted", command=promoted.command, first=False),
    )
    card = the_card(slack)
    assert card.ts == succeeded.ts and card.updates == updates + 2
    assert model_text(card) == (
        ":trophy: *Model* v3 serves 100 % of `penguins-prod`\n"
        f"promoted by <@{ONCALL}> at 2026-03-01 09:30:00 UTC"
    )
    assert buttons(card) == []
    assert card.blocks[0]["text"]["text"] == ":white_check_mark: penguins: succeeded"
    # no second message, no reply: only the card changed
    assert len(slack.channel_messages("#ml-training")) == replies
    kept = json.loads(runtime.store.read(keys.run_message(run_id)) or b"{}")
    assert kept["status"] == "succeeded"

    # a redelivered older event (a new delivery, after the notifier's own claim is gone) and a
    # late progress event cannot bring the canary back: the ledger's record is what is shown
    promoted_card = card_json(card)
    runtime.store.delete(keys.notification(run_id, "promotion.canary"))
    runtime.ports.publish(event_of(canary, run_id, "canary"))
    runtime.bus.run_until_idle()
    card = the_card(slack)
    assert card_json(card) == promoted_card != as_canary
    assert card.blocks[0]["text"]["text"] == ":white_check_mark: penguins: succeeded"


def test_roll_back_restores_the_previous_split_on_the_same_card(
    settings: Settings, slack: FakeSlack
) -> None:
    runtime = runtime_for(settings, slack, [ONCALL])
    run_id = "penguins-promo-2"
    run_stages(runtime, run_id)
    canary = canary_record(run_id)
    promote_step(runtime, run_id, canary, event_of(canary, run_id, "canary"))
    rolled_back = canary.model_copy(
        update={
            "state": "rolled_back",
            "traffic": {"111": 100},
            "command": {"action": "rollback", **BY_ONCALL},
        }
    )
    event = LifecycleEvent(
        run_id=run_id,
        pipeline="penguins",
        stage="promotion",
        status="rolled_back",
        summary="model rolled back",
        details={
            "endpoint": "penguins-prod",
            "model": rolled_back.model,
            "traffic": {"111": 100},
            "command": rolled_back.command,
        },
    )
    promote_step(runtime, run_id, rolled_back, event)
    card = the_card(slack)
    assert model_text(card) == (
        f":rewind: *Model* v3 on `penguins-prod` rolled back by <@{ONCALL}> at 2026-03-01 "
        "09:30:00 UTC: the previous split restored (`111: 100 %`)"
    )
    assert buttons(card) == []
    assert card.blocks[0]["text"]["text"] == ":white_check_mark: penguins: succeeded"
    assert len(tops(slack)) == 1


def test_a_failed_promotion_is_a_red_line_on_the_card_and_heard_in_the_channel(
    settings: Settings, slack: FakeSlack
) -> None:
    runtime = runtime_for(settings, slack, [ONCALL])
    run_id = "penguins-promo-3"
    run_stages(runtime, run_id)
    before = the_card(slack)
    failed = canary_record(run_id).model_copy(
        update={
            "state": "failed",
            "error": "endpoints.deploy refused (403): grant roles/aiplatform.user",
        }
    )
    event = LifecycleEvent(
        run_id=run_id,
        pipeline="penguins",
        stage="promotion",
        status="failed",
        summary="promotion of v3 failed",
        error=failed.error,
        details={"endpoint": "penguins-prod", "reason": "deploy"},
    )
    promote_step(runtime, run_id, failed, event)
    card = the_card(slack)
    assert card.ts == before.ts
    assert card.blocks[0]["text"]["text"] == ":white_check_mark: penguins: succeeded"
    assert model_text(card) == (
        ":red_circle: *Promotion failed* on `penguins-prod`: endpoints.deploy refused (403): "
        "grant roles/aiplatform.user"
    )
    assert buttons(card) == []
    [heard] = [
        m
        for m in slack.channel_messages("#ml-training")
        if m.thread_ts == card.ts and "Promotion failed" in m.text
    ]
    assert heard.broadcast  # the channel hears it, once for 3 deliveries
    # the run's own outcome is untouched: its history still says succeeded
    summary = read_summary(runtime.store, "penguins", run_id)
    assert summary is not None and summary.status == "succeeded"


def test_a_canary_before_the_notifier_saw_the_success_posts_the_run_card_once(
    settings: Settings, slack: FakeSlack
) -> None:
    # promotion starts from pipeline.succeeded in parallel with the notifier: its first event
    # may come first. The card is built from the ledger; the success then updates the same card
    runtime = runtime_for(settings, slack, [ONCALL])
    run_id = "penguins-promo-4"
    run_stages(runtime, run_id, until="pipeline.submitted")
    record = keys.ledger(run_id, "pipeline")
    finished = {"status": "succeeded", "metrics": {"accuracy": 0.97}, "links": {}}
    runtime.store.write(
        record, StageRecord("pipeline", "done", ASKED, finished_at=ASKED, result=finished).to_json()
    )
    canary = canary_record(run_id)
    promote_step(runtime, run_id, canary, event_of(canary, run_id, "canary"))
    card = the_card(slack)
    assert card.blocks[0]["text"]["text"] == ":white_check_mark: penguins: succeeded"
    assert buttons(card) == [("mlrelay_promote", run_id), ("mlrelay_rollback", run_id)]

    success = LifecycleEvent(
        run_id=run_id,
        pipeline="penguins",
        stage="pipeline",
        status="succeeded",
        summary="pipeline succeeded",
        figures={"accuracy": 0.97},
    )
    for _ in range(3):
        runtime.ports.publish(success)
    runtime.bus.run_until_idle()
    card = the_card(slack)  # still one card, the model section and its buttons kept
    assert buttons(card) == [("mlrelay_promote", run_id), ("mlrelay_rollback", run_id)]
    assert "Challenger v3 serves 10 %" in model_text(card)


def test_with_an_empty_allowlist_the_canary_card_has_the_section_and_no_buttons(
    settings: Settings, slack: FakeSlack
) -> None:
    runtime = runtime_for(settings, slack, [])
    run_id = "penguins-promo-5"
    run_stages(runtime, run_id)
    canary = canary_record(run_id)
    promote_step(runtime, run_id, canary, event_of(canary, run_id, "canary"))
    card = the_card(slack)
    assert "Challenger v3 serves 10 %" in model_text(card)
    assert buttons(card) == []


def test_with_a_webhook_each_promotion_event_is_one_line_once(
    settings: Settings, slack: FakeSlack
) -> None:
    from tests.helpers import make_runtime
    from tests.integration.notifier.notifier_kit import registry_with, webhook_channel

    runtime = make_runtime(
        settings,
        webhook_channel(slack),  # type: ignore[arg-type]
        registry=registry_with(on_success="always"),
        wrap={"mlrelay-snapshotter": lambda handler: lambda event: None},
    )
    run_id = "penguins-promo-6"
    canary = canary_record(run_id)
    promote_step(runtime, run_id, canary, event_of(canary, run_id, "canary"))
    [line] = [c.body for c in slack.delivered("webhook")]  # 3 deliveries, one post
    assert "Challenger v3 serves 10 % of `penguins-prod`" in json.dumps(line)
    assert "mlrelay_promote" not in json.dumps(line)  # a webhook's message takes no clicks
