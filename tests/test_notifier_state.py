"""The notifier's decisions and its state in the bucket: policy, last outcome, the run's message."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlrelay.adapters.local_folder import LocalFolderStore
from mlrelay.contracts import LifecycleEvent
from mlrelay.errors import TransientError
from mlrelay.registry import NotifySpec
from mlrelay_notifier.policy import previous_outcome, wants_post
from mlrelay_notifier.run_message import RunMessage, advance, claim_first_post, record_posted
from mlrelay_notifier.undelivered import keep_undelivered

from .helpers import REGISTRY, REPO


def event(status: str, run_id: str = "penguins-a-1", stage: str = "pipeline") -> LifecycleEvent:
    return LifecycleEvent(run_id=run_id, pipeline="penguins", stage=stage, status=status)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "notify", "previous", "posted"),
    [
        ("failed", {"on_success": "never", "progress": False}, None, True),
        ("rejected", {"on_success": "never"}, None, True),
        ("dead_lettered", {"on_success": "never"}, None, True),
        ("succeeded", {"on_success": "always"}, None, True),
        ("succeeded", {"on_success": "never"}, "failed", False),
        ("succeeded", {"on_success": "on_recovery"}, "failed", True),
        ("succeeded", {"on_success": "on_recovery"}, "succeeded", False),
        ("succeeded", {"on_success": "on_recovery"}, None, False),
        ("accepted", {}, None, True),
        ("accepted", {"on_success": "on_recovery"}, None, False),
        ("submitted", {"on_success": "never", "progress": True}, None, True),
        ("completed", {"on_success": "always", "progress": False}, None, False),
    ],
)
def test_policy(status: str, notify: dict[str, object], previous: str | None, posted: bool) -> None:
    spec = NotifySpec(**notify)  # type: ignore[arg-type]
    assert wants_post(event(status), spec, previous)[0] is posted


def test_previous_outcome_is_the_run_before_and_stays_the_same_on_redelivery(
    tmp_path: Path,
) -> None:
    store = LocalFolderStore(tmp_path)
    assert previous_outcome(store, event("failed", "penguins-a-1")) is None
    assert previous_outcome(store, event("succeeded", "penguins-a-2")) == "failed"
    assert previous_outcome(store, event("succeeded", "penguins-a-2")) == "failed"  # redelivered
    assert previous_outcome(store, event("succeeded", "penguins-a-3")) == "succeeded"
    assert previous_outcome(store, event("accepted", "penguins-a-4", "trigger")) is None


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


def test_undelivered_lists_what_slack_did_not_take(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = LocalFolderStore(home / "bucket")
    keep_undelivered(
        store, event("failed"), {"text": "x"}, route="#ml", reason="Slack answered 503"
    )
    done = subprocess.run(
        [str(Path(sys.executable).parent / "mlrelay"), "notify", "undelivered"],
        cwd=REPO,
        env={**os.environ, "MLRELAY_HOME": str(home), "MLRELAY_REGISTRY": str(REGISTRY)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "penguins-a-1  pipeline.failed" in done.stdout and "Slack answered 503" in done.stdout
    assert (
        json.loads(store.read(store.list("notifications/undelivered/")[0]) or b"")["route"] == "#ml"
    )
