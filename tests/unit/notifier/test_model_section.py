"""The run card's model section (mlrelay_notifier.model_section): each promotion state as the
card writes it, the Promote to 100 % / Roll back buttons while the model is a canary, and the
section read from the run's PromotionRecord before the event's own word."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from mlrelay.adapters.local_folder import LocalFolderStore
from mlrelay.contracts import LifecycleEvent
from mlrelay.promotion_record import PromotionRecord
from mlrelay.stage import keys
from mlrelay_notifier.model_section import ModelSection, from_event, from_record, read_model
from mlrelay_notifier.render import render_card, render_text, render_update
from mlrelay_notifier.run_view import RunView, build_run_view
from tests.fakes.slack import block_problem
from tests.helpers import SAMPLE_RUN as RUN
from tests.helpers import sample_ledger as ledger

CHAMPION = "penguins-sched-20261129t0500z-0a0b0c0d"
ASKED = "2026-03-01T09:30:00+00:00"
BY_ANA = {"action": "promote", "requested_by": "slack:U0ANA1", "requested_at": ASKED}
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
    champion_run_id=CHAMPION,
)


def succeeded_view(model: ModelSection | None, *, interactive: bool = True) -> RunView:
    event = LifecycleEvent(
        run_id=RUN, pipeline="penguins", stage="pipeline", status="succeeded", summary="ok"
    )
    return replace(build_run_view(event, ledger()), model=model, interactive=interactive)


def card_of(model: ModelSection | None, *, interactive: bool = True) -> dict[str, Any]:
    card = render_card(succeeded_view(model, interactive=interactive)).payload()
    assert block_problem(card["blocks"]) is None
    return card


def section_text(card: dict[str, Any]) -> str:
    [block] = [b for b in card["blocks"] if b.get("block_id") == "mlrelay_model"]
    return str(block["text"]["text"])


def buttons(card: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        e
        for b in card["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"].startswith("mlrelay_")
    ]


def test_a_canary_says_who_serves_what_and_offers_promote_and_roll_back() -> None:
    card = card_of(from_record(CANARY))
    assert section_text(card) == (
        ":hatching_chick: *Model* Challenger v3 serves 10 % of `penguins-prod` beside the "
        f"champion (run `{CHAMPION}`, 90 %)"
    )
    promote, rollback = buttons(card)
    assert (promote["action_id"], promote["value"], promote["style"]) == (
        "mlrelay_promote",
        RUN,
        "primary",
    )
    assert promote["text"]["text"] == "Promote to 100 %"
    assert promote["confirm"]["title"]["text"] == "Promote to 100 %?"
    assert (rollback["action_id"], rollback["value"], rollback["style"]) == (
        "mlrelay_rollback",
        RUN,
        "danger",
    )
    assert rollback["text"]["text"] == "Roll back"
    assert "previous traffic split is restored" in rollback["confirm"]["text"]["text"]
    # the run's own status stays what its final event made it
    assert card["blocks"][0]["text"]["text"] == ":white_check_mark: penguins: succeeded"


def test_a_canary_that_promotes_itself_says_when() -> None:
    record = CANARY.model_copy(update={"auto_promote_at": "2026-03-02T09:30:00+00:00"})
    assert section_text(card_of(from_record(record))).endswith(
        " · auto-promotes at 2026-03-02 09:30:00 UTC"
    )


def test_a_canary_without_a_known_champion_run_still_names_the_champions_share() -> None:
    record = CANARY.model_copy(update={"champion_run_id": None, "traffic": {}})
    assert "beside the champion (90 %)" in section_text(card_of(from_record(record)))


@pytest.mark.parametrize(
    ("command", "line"),
    [
        (BY_ANA, "promoted by <@U0ANA1> at 2026-03-01 09:30:00 UTC"),
        ({**BY_ANA, "requested_by": "cli:ana"}, "promoted by cli:ana at 2026-03-01 09:30:00 UTC"),
        (
            {**BY_ANA, "requested_by": "watchdog", "source": "watchdog"},
            "auto-promoted at 2026-03-01 09:30:00 UTC",
        ),
    ],
)
def test_a_promoted_model_serves_100_percent_and_says_who_promoted_it(
    command: dict[str, Any], line: str
) -> None:
    record = CANARY.model_copy(
        update={"state": "promoted", "traffic": {"222": 100}, "command": command}
    )
    card = card_of(from_record(record))
    assert section_text(card) == (f":trophy: *Model* v3 serves 100 % of `penguins-prod`\n{line}")
    assert buttons(card) == []  # the used buttons turned into the line


def test_the_first_model_on_an_endpoint_says_so() -> None:
    record = CANARY.model_copy(
        update={"state": "promoted", "traffic": {"222": 100}, "previous_traffic": {}}
    )
    assert section_text(card_of(from_record(record))).endswith("\nfirst model on `penguins-prod`")


def test_a_rolled_back_model_says_who_and_the_split_restored() -> None:
    record = CANARY.model_copy(
        update={
            "state": "rolled_back",
            "traffic": {"111": 100},
            "command": {**BY_ANA, "action": "rollback"},
        }
    )
    card = card_of(from_record(record))
    assert section_text(card) == (
        ":rewind: *Model* v3 on `penguins-prod` rolled back by <@U0ANA1> at 2026-03-01 09:30:00 "
        "UTC: the previous split restored (`111: 100 %`)"
    )
    assert buttons(card) == []


def test_a_failed_promotion_is_a_red_line_with_the_error_and_no_buttons() -> None:
    record = CANARY.model_copy(
        update={"state": "failed", "error": "403 on endpoints.deploy: grant roles/aiplatform.user"}
    )
    card = card_of(from_record(record))
    assert section_text(card).endswith(
        ":red_circle: *Promotion failed* on `penguins-prod`: 403 on endpoints.deploy: grant "
        "roles/aiplatform.user"
    )
    assert buttons(card) == []
    assert card["blocks"][0]["text"]["text"] == ":white_check_mark: penguins: succeeded"


def test_buttons_only_on_an_interactive_card() -> None:
    # a webhook's message, or an empty allowlist: the section, and no button to click
    card = card_of(from_record(CANARY), interactive=False)
    assert "Challenger v3" in section_text(card)
    assert buttons(card) == []


def test_a_card_without_a_promotion_has_no_model_section() -> None:
    card = card_of(None)
    assert [b for b in card["blocks"] if b.get("block_id") == "mlrelay_model"] == []


def test_user_content_in_the_section_is_escaped() -> None:
    record = CANARY.model_copy(update={"state": "failed", "error": "<!channel> broke it"})
    assert "&lt;!channel&gt; broke it" in section_text(card_of(from_record(record)))


def promotion_event(status: str, **details: Any) -> LifecycleEvent:
    return LifecycleEvent(
        run_id=RUN,
        pipeline="penguins",
        stage="promotion",
        status=status,  # type: ignore[arg-type]
        summary=f"promotion {status}",
        error="quota exceeded" if status == "failed" else None,
        details=details,
    )


def test_the_ledgers_record_wins_over_an_older_event(tmp_path: Path) -> None:
    store = LocalFolderStore(tmp_path)
    promoted = CANARY.model_copy(update={"state": "promoted", "command": BY_ANA})
    store.write(keys.promotion(RUN), promoted.model_dump_json().encode())
    canary_again = promotion_event("canary", endpoint="penguins-prod", canary_percent=10)
    section = read_model(store, RUN, canary_again)
    assert section is not None and section.state == "promoted"


def test_without_a_record_the_event_says_it(tmp_path: Path) -> None:
    event = promotion_event(
        "promoted",
        endpoint="penguins-prod",
        version_id="1",
        deployed_model_id="9",
        traffic={"9": 100},
        previous_traffic={},
        champion_run_id=None,
        command=None,
        first=True,
    )
    section = read_model(LocalFolderStore(tmp_path), RUN, event)
    assert section == from_event(event)
    assert section is not None and (section.state, section.first) == ("promoted", True)


def test_a_failure_the_record_does_not_carry_yet_adds_its_error_to_the_records_state(
    tmp_path: Path,
) -> None:
    store = LocalFolderStore(tmp_path)
    store.write(keys.promotion(RUN), CANARY.model_dump_json().encode())
    section = read_model(store, RUN, promotion_event("failed", endpoint="penguins-prod"))
    assert section is not None and (section.state, section.error) == ("canary", "quota exceeded")


def test_a_webhook_line_and_the_console_say_what_the_event_says() -> None:
    event = promotion_event("failed", endpoint="penguins-prod", reason="deploy")
    view = replace(build_run_view(event, {}, advance=False), model=from_event(event))
    line = render_update(view).payload()["blocks"][0]["text"]["text"]
    assert line == (
        ":x: *penguins* — promotion failed\n"
        ":red_circle: *Promotion failed* on `penguins-prod`: quota exceeded"
    )
    console = render_text(view, console=True)
    assert "[PROMOTION FAILED] *Promotion failed* on `penguins-prod`: quota exceeded" in console
    assert console.count("quota exceeded") == 1
