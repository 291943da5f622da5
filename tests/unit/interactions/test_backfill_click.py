"""The door takes a missed slot's Backfill button (`mlrelay_backfill`, value: the run id the
slot's tick would have made): one `backfill` command, once, and only for a real slot with no run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mlrelay.ports.container import use_ports
from tests.helpers import SLACK_USER, button_body, seed_run, signed_headers
from tests.unit.interactions.door_kit import Door, open_door
from tests.unit.schedules.test_slot_runs import SLOT, slot_run_id

MISSED = slot_run_id()  # penguins' Monday 2026-11-30 06:00 Amsterdam slot, long past


@pytest.fixture
def door(tmp_path: Path) -> Iterator[Door]:
    yield open_door(tmp_path / "home")
    use_ports(None)


def click(door: Door, run_id: str = MISSED, user: str = SLACK_USER) -> dict[str, str]:
    body = button_body(run_id, "backfill", user=user)
    response = door.post(body, signed_headers(door.secret, body))
    assert response.status_code == 200
    answer: dict[str, str] = response.get_json()
    assert answer["response_type"] == "ephemeral"
    return answer


def test_a_backfill_click_publishes_one_backfill_command_for_the_slot(door: Door) -> None:
    answer = click(door)
    assert f"backfill of `{MISSED}` requested by <@{SLACK_USER}>" in answer["text"]
    (command,) = door.commands()
    assert (command.action, command.run_id, command.pipeline) == ("backfill", MISSED, "penguins")
    assert command.requested_by == f"slack:{SLACK_USER}"
    assert door.capture.messages[0][1].attributes["action"] == "backfill"


def test_a_second_click_and_slack_retries_publish_nothing_more(door: Door) -> None:
    click(door)
    body = button_body(MISSED, "backfill")
    retried = {**signed_headers(door.secret, body), "X-Slack-Retry-Num": "1"}
    assert door.post(body, retried).status_code == 200
    answer = click(door)
    assert "was already requested" in answer["text"]
    assert len(door.commands()) == 1


def test_a_slot_that_has_a_run_is_not_backfilled(door: Door) -> None:
    seed_run(door.runtime.store, MISSED)  # the late tick (or the first backfill) got there
    answer = click(door)
    assert "has a run already" in answer["text"]
    assert door.published() == 0


@pytest.mark.parametrize(
    "run_id",
    [
        "penguins-not-a-slot",
        slot_run_id(SLOT.replace(hour=6)),  # not a slot of the schedule
        slot_run_id(n_estimators=999),  # the slot, but parameters it never runs with
    ],
)
def test_a_value_that_is_no_slot_of_the_registry_publishes_nothing(door: Door, run_id: str) -> None:
    answer = click(door, run_id)
    assert answer["text"].startswith("Nothing was backfilled:")
    assert door.published() == 0


def test_an_unlisted_user_may_not_backfill(door: Door) -> None:
    answer = click(door, user="U999NOPE")
    assert "may not act on `penguins`" in answer["text"]
    assert door.published() == 0
