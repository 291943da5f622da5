"""Which buttons were used (mlrelay_notifier.used_actions), read from the ledger a local folder
holds: the same answer on every delivery, whatever event is being posted."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from mlrelay.adapters.local_folder import LocalFolderStore
from mlrelay.stage import keys
from mlrelay.stage.ledger import StageRecord
from mlrelay_notifier.used_actions import UsedAction, used_actions

RUN = "penguins-used-1"
ASKED = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
STATE = "ab" * 8


def claim(store: LocalFolderStore, key: str, state: str, result: dict[str, object]) -> None:
    record = StageRecord("command", state, ASKED.isoformat(), finished_at=ASKED.isoformat())
    store.write(key, StageRecord(**{**record.__dict__, "result": result}).to_json())


def test_a_carried_out_cancel_is_used_by_whoever_the_doors_claim_names(tmp_path: Path) -> None:
    store = LocalFolderStore(tmp_path)
    claim(
        store,
        keys.command(RUN, "cancel", STATE),
        "done",
        {"requested_by": "slack:U1", "requested_at": ASKED.isoformat()},
    )
    claim(store, keys.command_done(RUN, "cancel", STATE), "done", {"job_name": RUN})
    assert used_actions(store, RUN, {}) == (UsedAction("cancel", "slack:U1", ASKED),)
    assert used_actions(store, RUN, {}) == used_actions(store, RUN, {})  # any delivery alike


def test_a_command_asked_but_not_yet_carried_out_or_refused_leaves_its_button(
    tmp_path: Path,
) -> None:
    store = LocalFolderStore(tmp_path)
    claim(store, keys.command(RUN, "cancel", STATE), "done", {"requested_by": "slack:U1"})
    assert used_actions(store, RUN, {}) == ()  # asked at the door; the deployer has not acted
    claim(store, keys.command_done(RUN, "cancel", STATE), "failed", {})
    assert used_actions(store, RUN, {}) == ()  # refused (e.g. the run had ended)


def test_the_attempts_made_from_the_run_are_its_used_retries(tmp_path: Path) -> None:
    store = LocalFolderStore(tmp_path)
    attempts = {
        "original": RUN,
        "attempts": [
            {
                "attempt": 2,
                "run_id": f"{RUN}-r2",
                "of": RUN,
                "action": "rerun",
                "action_key": f"{RUN}/rerun/{STATE}",
                "requested_by": "cli:ana",
                "requested_at": ASKED.isoformat(),
                "source": "cli",
            },
            {
                "attempt": 3,
                "run_id": f"{RUN}-r3",
                "of": f"{RUN}-r2",  # a retry of the attempt: the attempt's card shows it
                "action": "retry",
                "action_key": f"{RUN}-r2/retry/{STATE}",
                "requested_by": "cli:ana",
                "requested_at": ASKED.isoformat(),
                "source": "cli",
            },
        ],
    }
    store.write(keys.attempts(RUN), json.dumps(attempts).encode())
    assert used_actions(store, RUN, {}) == (
        UsedAction("rerun", "cli:ana", ASKED, f"attempt {RUN}-r2"),
    )


def test_a_final_event_caused_by_a_command_names_it_when_no_claim_does(tmp_path: Path) -> None:
    store = LocalFolderStore(tmp_path)
    command = {
        "action": "reject",
        "requested_by": "slack:U2",
        "requested_at": ASKED.isoformat(),
        "source": "slack",
    }
    assert used_actions(store, RUN, {}, {"command": command}) == (
        UsedAction("reject", "slack:U2", ASKED),
    )
