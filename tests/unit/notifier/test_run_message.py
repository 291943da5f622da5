"""The run's one Slack message, kept in the bucket (mlrelay_notifier.run_message): one delivery
posts it first, and it never moves back to an earlier status."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlrelay.adapters.local_folder import LocalFolderStore
from mlrelay.errors import TransientError
from mlrelay_notifier.run_message import RunMessage, advance, claim_first_post, record_posted


def test_only_one_delivery_posts_the_runs_first_message(tmp_path: Path) -> None:
    store = LocalFolderStore(tmp_path)
    assert claim_first_post(store, "penguins-a-1") is None  # this one posts
    with pytest.raises(TransientError, match="another delivery is posting"):
        claim_first_post(store, "penguins-a-1")
    record_posted(store, "penguins-a-1", RunMessage("posted", "C1", "1.000001", 1, "accepted"))
    again = claim_first_post(store, "penguins-a-1")
    assert again is not None and again.ts == "1.000001"


def test_the_runs_message_never_moves_back(tmp_path: Path) -> None:
    store = LocalFolderStore(tmp_path)
    record_posted(store, "penguins-a-1", RunMessage("posted", "C1", "1.000001", 4, "submitted"))
    assert advance(store, "penguins-a-1", 3, "completed") is None  # a late snapshot event
    moved = advance(store, "penguins-a-1", 5, "succeeded")
    assert moved is not None and moved.status == "succeeded"
    assert advance(store, "penguins-a-1", 5, "succeeded") is not None  # a retry may redo it
