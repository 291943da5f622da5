"""The notifier's decisions (mlrelay_notifier.policy): what the registry's `notify:` policy posts,
and the last outcome it compares with."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlrelay.adapters.local_folder import LocalFolderStore
from mlrelay.contracts import LifecycleEvent
from mlrelay.registry import NotifySpec
from mlrelay_notifier.policy import previous_outcome, wants_post


def event(status: str, run_id: str = "penguins-a-1", stage: str = "pipeline") -> LifecycleEvent:
    return LifecycleEvent(run_id=run_id, pipeline="penguins", stage=stage, status=status)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "notify", "previous", "posted"),
    [
        ("failed", {"on_success": "never", "progress": False}, None, True),
        ("rejected", {"on_success": "never"}, None, True),
        ("cancelled", {"on_success": "never", "progress": False}, None, True),
        ("succeeded", {"on_success": "on_recovery"}, "cancelled", False),  # not a recovery
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


def test_a_regression_is_posted_like_a_failure_and_the_next_success_is_its_recovery(
    tmp_path: Path,
) -> None:
    never, recovery = NotifySpec(on_success="never"), NotifySpec(on_success="on_recovery")
    regressed = "succeeded_with_regression"
    assert wants_post(event("succeeded"), never, None, status=regressed) == (
        True,
        "succeeded_with_regression: always posted",
    )
    store = LocalFolderStore(tmp_path)
    assert previous_outcome(store, event("succeeded", "penguins-a-1"), status=regressed) is None
    previous = previous_outcome(store, event("succeeded", "penguins-a-2"))
    assert previous == regressed
    assert wants_post(event("succeeded"), recovery, previous) == (
        True,
        "on_success: on_recovery, and the previous run succeeded_with_regression",
    )


def test_a_cancelled_run_is_an_outcome_the_next_run_sees(tmp_path: Path) -> None:
    store = LocalFolderStore(tmp_path)
    assert previous_outcome(store, event("cancelled", "penguins-c-1")) is None
    assert previous_outcome(store, event("succeeded", "penguins-c-2")) == "cancelled"
