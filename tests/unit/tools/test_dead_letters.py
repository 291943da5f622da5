"""Dead letters for operators (mlrelay_tools.dead_letters): a replay sends the message back
to its topic once; again only with force; an unknown id is named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlrelay.adapters.local_folder import LocalFolderStore
from mlrelay.errors import PermanentError
from mlrelay_tools.dead_letters import replay_dead_letter


def test_a_second_replay_needs_force_and_an_unknown_id_is_named(tmp_path: Path) -> None:
    store = LocalFolderStore(tmp_path)
    record = {
        "subscription": "mlrelay-trigger",
        "topic": "mlrelay-runs",
        "delivery_attempts": 5,
        "message": {"message_id": "m-1", "attributes": {"run_id": "r-1"}, "data": "{}"},
    }
    store.create("deadletters/mlrelay-trigger/m-1.json", json.dumps(record).encode())
    sent: list[tuple[str, bytes, dict[str, str]]] = []

    class Publisher:
        def publish(self, topic: str, data: bytes, attributes: dict[str, str]) -> str:
            sent.append((topic, data, attributes))
            return f"new-{len(sent)}"

    first = replay_dead_letter(store, Publisher(), "m-1")
    assert sent == [("mlrelay-runs", b"{}", {"run_id": "r-1"})] and first.replayed_as == "new-1"
    with pytest.raises(PermanentError, match="--force"):
        replay_dead_letter(store, Publisher(), "m-1")
    assert replay_dead_letter(store, Publisher(), "m-1", force=True).replayed_as == "new-2"
    with pytest.raises(PermanentError, match="not a dead letter"):
        replay_dead_letter(store, Publisher(), "nope")
