"""Promote to 100 % and Roll back through the real functions-framework app: a signed click by
someone on the pipeline's allowlist, while the run's model is a canary (its PromotionRecord in
the ledger), publishes one RunCommand; any other state is refused naming it, the allowlist is
asked first, and nothing is published twice."""

from __future__ import annotations

import pytest

from mlrelay.promotion_record import PromotionRecord
from mlrelay.stage import keys
from mlrelay.stage.commands import find_run
from tests.helpers import SLACK_USER, button_body, signed_headers, slash_body
from tests.unit.interactions.conftest import RUN
from tests.unit.interactions.door_kit import Door

CANARY = PromotionRecord(
    state="canary",
    pipeline="penguins",
    endpoint="penguins-prod",
    model="projects/p/locations/l/models/penguins@3",
    version_id="3",
    deployed_model_id="222",
    canary_percent=10,
    traffic={"111": 90, "222": 10},
    previous_traffic={"111": 100},
    champion_run_id="penguins-sched-20261129t0500z-0a0b0c0d",
)
PROMOTED_BY_ANA = {
    "action": "promote",
    "requested_by": "slack:U0ANA1",
    "requested_at": "2026-03-01T09:30:00+00:00",
    "source": "slack",
}


def keep(door: Door, record: PromotionRecord) -> None:
    door.runtime.store.write(keys.promotion(RUN), record.model_dump_json().encode())


def click(door: Door, action: str, user: str = SLACK_USER) -> str:
    body = button_body(RUN, action, user=user)
    response = door.post(body, signed_headers(door.secret, body))
    assert response.status_code == 200
    answer = response.get_json()
    assert answer["response_type"] == "ephemeral"
    return str(answer["text"])


@pytest.mark.parametrize("action", ["promote", "rollback"])
def test_a_click_on_a_canary_publishes_one_command_for_the_promotion_function(
    door: Door, action: str
) -> None:
    keep(door, CANARY)
    assert f"{action} of `{RUN}` requested by <@{SLACK_USER}>" in click(door, action)
    (command,) = door.commands()
    assert (command.action, command.run_id, command.pipeline) == (action, RUN, "penguins")
    assert (command.requested_by, command.source) == (f"slack:{SLACK_USER}", "slack")
    state = find_run(door.runtime.ports, RUN).state
    assert command.action_key == f"{RUN}/{action}/{state}"
    _topic, message = door.capture.messages[0]
    assert message.attributes["action"] == action


def test_the_same_click_three_times_publishes_one_command(door: Door) -> None:
    keep(door, CANARY)
    answers = [click(door, "promote") for _ in range(3)]
    assert door.published() == 1
    assert all("already requested by" in a for a in answers[1:])


def test_someone_not_on_the_allowlist_is_refused_before_the_state_is_looked_at(
    door: Door,
) -> None:
    keep(door, CANARY)
    assert "may not act on `penguins`" in click(door, "promote", user="U999NOPE")
    keep(door, CANARY.model_copy(update={"state": "promoted", "command": PROMOTED_BY_ANA}))
    assert "may not act on `penguins`" in click(door, "rollback", user="U999NOPE")
    assert door.published() == 0


@pytest.mark.parametrize(
    ("record", "said"),
    [
        (
            CANARY.model_copy(update={"state": "promoted", "command": PROMOTED_BY_ANA}),
            "was already promoted by <@U0ANA1> at 2026-03-01 09:30:00 UTC",
        ),
        (
            CANARY.model_copy(
                update={
                    "state": "promoted",
                    "command": {**PROMOTED_BY_ANA, "requested_by": "watchdog"}
                    | {"source": "watchdog"},
                }
            ),
            "was already auto-promoted at 2026-03-01 09:30:00 UTC",
        ),
        (
            CANARY.model_copy(
                update={
                    "state": "rolled_back",
                    "traffic": {"111": 100},
                    "command": {**PROMOTED_BY_ANA, "action": "rollback"}
                    | {"requested_by": "cli:ana"},
                }
            ),
            "was already rolled back by cli:ana at 2026-03-01 09:30:00 UTC",
        ),
        (
            CANARY.model_copy(update={"state": "promoted", "previous_traffic": {}}),
            "already serves 100 % of `penguins-prod` as its first model",
        ),
        (CANARY.model_copy(update={"state": "deploying"}), "is still being deployed"),
        (
            CANARY.model_copy(update={"state": "failed", "error": "quota exceeded: ask for more"}),
            "failed to deploy to `penguins-prod`: quota exceeded: ask for more",
        ),
    ],
)
@pytest.mark.parametrize("action", ["promote", "rollback"])
def test_a_click_when_the_model_is_not_a_canary_names_its_state_and_publishes_nothing(
    door: Door, record: PromotionRecord, said: str, action: str
) -> None:
    keep(door, record)
    answer = click(door, action)
    assert answer.startswith(f"Nothing was done: the model of `{RUN}` ")
    assert said in answer
    assert door.published() == 0


def test_a_run_without_a_promotion_record_has_nothing_to_promote(door: Door) -> None:
    assert "has no model on an endpoint to promote" in click(door, "promote")
    assert door.published() == 0


def test_after_a_failed_promote_the_same_button_asks_afresh(door: Door) -> None:
    # the promotion flow kept the canary and recorded the error: the run state moved on
    keep(door, CANARY)
    click(door, "promote")
    keep(door, CANARY.model_copy(update={"error": "Vertex AI timed out; click again"}))
    click(door, "promote")
    first, second = door.commands()
    assert first.action_key != second.action_key


@pytest.mark.parametrize("verb", ["promote", "rollback"])
def test_slash_promote_and_rollback_take_the_button_path(door: Door, verb: str) -> None:
    keep(door, CANARY)
    body = slash_body(f"{verb} {RUN}")
    response = door.post(body, signed_headers(door.secret, body))
    assert f"{verb} of `{RUN}` requested by" in response.get_json()["text"]
    (command,) = door.commands()
    assert command.action == verb
    keep(door, CANARY.model_copy(update={"state": "promoted", "command": PROMOTED_BY_ANA}))
    again = slash_body(f"{verb} {RUN}")
    answer = door.post(again, signed_headers(door.secret, again)).get_json()["text"]
    assert "was already promoted by <@U0ANA1>" in answer
    assert door.published() == 1


def test_the_ledger_still_reads_with_a_promotion_record_beside_the_stage_records(
    door: Door,
) -> None:
    # runs/<run_id>/promotion.json is no stage record: the run is found, its pipeline known
    keep(door, CANARY)
    assert find_run(door.runtime.ports, RUN).pipeline == "penguins"
