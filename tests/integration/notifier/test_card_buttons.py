"""Bot mode against the loopback Slack: the run card carries the buttons its state allows, and
once a command is carried out the same card is updated: the used button is gone and a line says
who used it and when. The retry is made by the real trigger from a RunCommand on the local bus
(3 deliveries); the cancel goes through the door's claim (`request_command`) and the deployer's
consumer claim and event, as `mlrelay_deployer.cancel` writes them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from mlrelay.config.settings import Settings
from mlrelay.contracts import RunCommand
from mlrelay.registry import ActionsSpec, Registry
from mlrelay.stage import keys
from mlrelay.stage.commands import find_run, request_command
from mlrelay.stage.ledger import run_once
from mlrelay_deployer.cancel import cancelled_event
from mlrelay_tools.local.runtime import LocalRuntime
from tests.fakes.slack import FakeSlack, Message, block_problem
from tests.helpers import make_runtime
from tests.integration.notifier.notifier_kit import bot_channel, registry_with, run_stages

ONCALL = "U0ONCALL"
ASKED = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def allowing(registry: Registry, users: list[str]) -> Registry:
    spec = registry.pipelines["penguins"]
    spec = spec.model_copy(update={"actions": ActionsSpec(allowed_users=users)})
    return registry.model_copy(update={"pipelines": {"penguins": spec}})


def held(handler: Any) -> Any:
    """A subscription whose stage this test drives itself (or does not need)."""
    return lambda event: None


def runtime_for(settings: Settings, slack: FakeSlack, users: list[str]) -> LocalRuntime:
    registry = allowing(registry_with(slack_channel="#ml-training", on_success="always"), users)
    return make_runtime(
        settings,
        bot_channel(slack),  # type: ignore[arg-type]
        registry=registry,
        wrap={"mlrelay-snapshotter": held, "mlrelay-cancel": held},
    )


def the_card(slack: FakeSlack) -> Message:
    [parent] = [m for m in slack.channel_messages("#ml-training") if m.thread_ts is None]
    assert block_problem(parent.blocks) is None
    return parent


def buttons(message: Message) -> list[tuple[str, str]]:
    return [
        (e["action_id"], e["value"])
        for b in message.blocks
        if b["type"] == "actions"
        for e in b["elements"]
    ]


def used_lines(message: Message) -> str:
    return "\n".join(
        e["text"] for b in message.blocks if b["type"] == "context" for e in b["elements"]
    )


def test_a_failed_card_offers_retry_and_after_the_retry_names_who_did_it(
    settings: Settings, slack: FakeSlack
) -> None:
    runtime = runtime_for(settings, slack, [ONCALL])
    original = "penguins-buttons-1"
    run_stages(runtime, original, outcome="failed")
    card = the_card(slack)
    assert buttons(card) == [("mlrelay_retry", original), ("mlrelay_rerun", original)]
    assert used_lines(card) == ""

    retry = RunCommand(
        action="retry",
        run_id=original,
        pipeline="penguins",
        requested_by=f"slack:{ONCALL}",
        requested_at=ASKED,
        source="slack",
        action_key=f"{original}/retry/{'0' * 16}",
    )
    for _ in range(3):
        runtime.ports.publish(retry)
    runtime.bus.run_until_idle()

    card = the_card(slack)
    assert card.updates >= 1
    assert buttons(card) == []  # the retry and the rerun answered the same question
    assert used_lines(card) == (
        f":repeat: retried by <@{ONCALL}> at 2026-03-01 09:30:00 UTC → attempt {original}-r2"
    )
    assert card.blocks[0]["text"]["text"] == ":x: penguins: failed"  # still the failure


def test_a_running_card_offers_cancel_and_the_cancelled_card_says_who_and_offers_retry(
    settings: Settings, slack: FakeSlack
) -> None:
    runtime = runtime_for(settings, slack, [ONCALL])
    run_id = "penguins-buttons-2"
    run_stages(runtime, run_id, until="pipeline.submitted")
    card = the_card(slack)
    assert buttons(card) == [("mlrelay_cancel", run_id)]
    [cancel] = [e for b in card.blocks if b["type"] == "actions" for e in b["elements"]]
    assert cancel["confirm"]["title"]["text"] == "Cancel this run?"

    # the door's claim, then the deployer's: what a click on Cancel leaves in the ledger
    asked = request_command(
        runtime.ports,
        find_run(runtime.ports, run_id),
        "cancel",
        requested_by=f"slack:{ONCALL}",
        requested_at=ASKED,
        response_url=None,
    )
    state = asked.command.action_key.rsplit("/", 1)[1]
    run_once(
        runtime.store,
        keys.command_done(run_id, "cancel", state),
        "cancel",
        lambda: {"job_name": run_id, "service_state": "terminated", "links": {}},
        lease=runtime.settings.claim_lease,
    )
    for _ in range(3):
        runtime.ports.publish(cancelled_event(asked.command, {}))
    runtime.bus.run_until_idle()

    card = the_card(slack)
    assert card.blocks[0]["text"]["text"] == ":no_entry_sign: penguins: cancelled"
    assert buttons(card) == [("mlrelay_retry", run_id), ("mlrelay_rerun", run_id)]
    assert used_lines(card) == (
        f":no_entry_sign: cancelled by <@{ONCALL}> at 2026-03-01 09:30:00 UTC"
    )
    kept = json.loads(runtime.store.read(keys.run_message(run_id)) or b"{}")
    assert kept["status"] == "cancelled"


def test_with_an_empty_allowlist_the_card_has_no_buttons(
    settings: Settings, slack: FakeSlack
) -> None:
    runtime = runtime_for(settings, slack, [])
    run_stages(runtime, "penguins-buttons-3", outcome="failed")
    assert buttons(the_card(slack)) == []


def test_a_missed_slot_card_offers_backfill_of_the_slots_run(
    settings: Settings, slack: FakeSlack
) -> None:
    from mlrelay.contracts import LifecycleEvent
    from tests.unit.schedules.test_slot_runs import slot_run_id

    runtime = runtime_for(settings, slack, [ONCALL])
    missed = slot_run_id()
    event = LifecycleEvent(
        run_id=missed,
        pipeline="penguins",
        stage="schedule",
        status="missed",
        summary="the 2026-11-30 06:00 Europe/Amsterdam slot of penguins has no run",
        details={"schedule": "default", "slot": "2026-11-30T05:00:00+00:00", "run_id": missed},
    )
    for _ in range(3):
        runtime.ports.publish(event)
    runtime.bus.run_until_idle()
    card = the_card(slack)
    assert card.blocks[0]["text"]["text"] == ":calendar: penguins: schedule slot missed"
    assert buttons(card) == [("mlrelay_backfill", missed)]

    # the click, carried out by the real trigger (3 deliveries): the slot's run is made, and the
    # missed card's button turns into who backfilled it
    backfill = RunCommand(
        action="backfill",
        run_id=missed,
        pipeline="penguins",
        requested_by=f"slack:{ONCALL}",
        requested_at=datetime.now(UTC),
        source="slack",
        action_key=f"{missed}/backfill/{'0' * 16}",
    )
    for _ in range(3):
        runtime.ports.publish(backfill)
    runtime.bus.run_until_idle()
    tops = [m for m in slack.channel_messages("#ml-training") if m.thread_ts is None]
    [card] = [m for m in tops if m.ts == card.ts]
    assert card.updates == 1
    assert buttons(card) == []
    assert f":calendar: backfilled by <@{ONCALL}> at " in used_lines(card)
    [run_card] = [m for m in tops if m.ts != card.ts]  # the slot's run: its own card, once
    assert missed in json.dumps(run_card.blocks)
