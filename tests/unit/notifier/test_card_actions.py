"""The run card's buttons per state (bot mode) and the line a used button turns into
(mlrelay_notifier.card_actions), as Block Kit JSON within Slack's limits."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from mlrelay.contracts import LifecycleEvent
from mlrelay_notifier.render import render_card
from mlrelay_notifier.run_view import RunView, build_run_view
from mlrelay_notifier.used_actions import UsedAction
from tests.fakes.slack import block_problem
from tests.helpers import SAMPLE_RUN as RUN
from tests.helpers import sample_failed_event as failed_event
from tests.helpers import sample_ledger as ledger

ASKED = datetime(2026, 11, 30, 9, 30, tzinfo=UTC)


def view_of(status: str, stage: str = "pipeline", **details: Any) -> RunView:
    """The run's view in `status` (a regression is the notifier's verdict on a success)."""
    event = LifecycleEvent(
        run_id=RUN,
        pipeline="penguins",
        stage=stage,  # type: ignore[arg-type]
        status="succeeded" if status == "succeeded_with_regression" else status,  # type: ignore[arg-type]
        summary=f"{stage} {status}",
        details=details,
    )
    view = build_run_view(event, ledger(), advance=False)
    return replace(view, status=status, interactive=True)


def buttons(card: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        e
        for block in card["blocks"]
        if block["type"] == "actions"
        for e in block["elements"]
        if e.get("action_id", "").startswith("mlrelay_")
    ]


def context_text(card: dict[str, Any]) -> str:
    return "\n".join(
        e["text"]
        for block in card["blocks"]
        if block["type"] == "context"
        for e in block["elements"]
    )


def offered(view: RunView) -> list[tuple[str, str, str]]:
    card = render_card(view).payload()
    assert block_problem(card["blocks"]) is None
    return [(b["action_id"], b["text"]["text"], b["value"]) for b in buttons(card)]


@pytest.mark.parametrize("status", ["failed", "succeeded_with_regression", "cancelled"])
def test_a_final_card_that_may_be_retried_offers_retry_and_rerun(status: str) -> None:
    assert offered(view_of(status)) == [
        ("mlrelay_retry", "Retry", RUN),
        ("mlrelay_rerun", "Rerun on the same snapshot", RUN),
    ]


def test_without_a_snapshot_there_is_nothing_to_rerun_on() -> None:
    view = replace(view_of("failed", stage="snapshot"), snapshot=None)
    assert offered(view) == [("mlrelay_retry", "Retry", RUN)]


def test_a_running_card_offers_cancel_with_a_confirmation() -> None:
    card = render_card(view_of("submitted")).payload()
    [cancel] = buttons(card)
    assert (cancel["action_id"], cancel["value"], cancel["style"]) == (
        "mlrelay_cancel",
        RUN,
        "danger",
    )
    assert cancel["confirm"]["title"]["text"] == "Cancel this run?"
    assert cancel["confirm"]["confirm"]["text"] == "Cancel the run"


def test_a_held_card_offers_approve_and_reject_and_reject_asks_first() -> None:
    card = render_card(view_of("held")).payload()
    approve, reject = buttons(card)
    assert (approve["action_id"], reject["action_id"]) == ("mlrelay_approve", "mlrelay_reject")
    assert "confirm" not in approve
    assert reject["confirm"]["title"]["text"] == "Reject this run?"
    assert card["blocks"][0]["text"]["text"] == ":raised_hand: penguins: waiting for approval"


def test_a_missed_slot_card_offers_backfill_of_the_slots_run() -> None:
    slot_run = "penguins-20261130t050000z-b97a0b98b638"
    view = view_of(
        "missed",
        stage="schedule",
        schedule="default",
        slot="2026-11-30T05:00:00+00:00",
        run_id=slot_run,
    )
    card = render_card(view).payload()
    assert offered(view) == [("mlrelay_backfill", "Backfill", slot_run)]
    facts = [f["text"] for f in card["blocks"][1]["fields"]]
    assert "*Schedule*\n`default`" in facts
    assert "*Slot*\n`2026-11-30T05:00:00+00:00`" in facts


@pytest.mark.parametrize(
    "status", ["accepted", "started", "completed", "succeeded", "rejected", "dead_lettered"]
)
def test_other_states_offer_no_action(status: str) -> None:
    assert offered(view_of(status)) == []


def test_a_webhook_card_or_an_empty_allowlist_has_no_buttons() -> None:
    assert offered(replace(view_of("failed"), interactive=False)) == []


def test_a_used_retry_becomes_a_line_naming_who_and_the_rerun_goes_too() -> None:
    used = UsedAction("retry", "slack:U0ONCALL", ASKED, f"attempt {RUN}-r2")
    view = replace(view_of("failed"), used=(used,))
    card = render_card(view).payload()
    assert buttons(card) == []
    line = context_text(card)
    assert f":repeat: retried by <@U0ONCALL> at 2026-11-30 09:30:00 UTC → attempt {RUN}-r2" in line


def test_a_cancelled_card_offers_retry_and_says_who_cancelled() -> None:
    used = UsedAction("cancel", "cli:ana", ASKED)
    view = replace(view_of("cancelled"), used=(used,))
    card = render_card(view).payload()
    assert [b["action_id"] for b in buttons(card)] == ["mlrelay_retry", "mlrelay_rerun"]
    assert "cancelled by cli:ana at 2026-11-30 09:30:00 UTC" in context_text(card)


def test_a_used_cancel_takes_the_cancel_button_away_before_the_cancelled_event() -> None:
    view = replace(view_of("submitted"), used=(UsedAction("cancel", "slack:U1", ASKED),))
    card = render_card(view).payload()
    assert buttons(card) == []
    assert "cancelled by <@U1>" in context_text(card)


def test_approved_by_replaces_both_gate_buttons() -> None:
    view = replace(view_of("held"), used=(UsedAction("approve", "slack:U1", ASKED),))
    card = render_card(view).payload()
    assert buttons(card) == []
    assert ":white_check_mark: approved by <@U1> at 2026-11-30 09:30:00 UTC" in context_text(card)


def test_a_user_name_in_a_used_line_is_escaped() -> None:
    view = replace(view_of("failed"), used=(UsedAction("retry", "cli:<!channel>", ASKED),))
    assert "cli:&lt;!channel&gt;" in context_text(render_card(view).payload())


def test_the_failure_card_keeps_its_link_buttons_beside_the_action_buttons() -> None:
    view = replace(build_run_view(failed_event(), ledger(), project="ml-prod"), interactive=True)
    card = render_card(view).payload()
    assert [b["action_id"] for b in buttons(card)] == ["mlrelay_retry", "mlrelay_rerun"]
    [attachment] = card["attachments"]
    links = [e for b in attachment["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert {e["text"]["text"] for e in links} >= {"Vertex", "Snapshot", "Logs"}
    assert block_problem(attachment["blocks"]) is None


def test_the_loopback_slack_refuses_buttons_over_slacks_limits() -> None:
    button = {"type": "button", "action_id": "mlrelay_retry", "text": {"type": "plain_text"}}
    too_long = [{"type": "actions", "elements": [{**button, "value": "x" * 2001}]}]
    assert block_problem(too_long) == "button value over 2000 characters"
    many = [{"type": "actions", "elements": [{**button, "action_id": f"a{i}"} for i in range(26)]}]
    assert block_problem(many) == "an actions block needs 1 to 25 elements"
    label = [{"type": "actions", "elements": [{**button, "text": {"text": "x" * 76}}]}]
    assert block_problem(label) == "button text over 75 characters"
