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


def test_a_flapping_pipeline_alerts_on_the_nth_failure_in_a_row_then_once_recovered(
    tmp_path: Path,
) -> None:
    from datetime import UTC, datetime, timedelta

    from mlrelay.history import RunSummary, write_summary
    from mlrelay.registry.specs import FailuresSpec
    from mlrelay_notifier.policy import failure_alerting

    store = LocalFolderStore(tmp_path)
    spec = NotifySpec(on_success="never", failures=FailuresSpec(after=3))
    start = datetime(2026, 11, 1, 6, tzinfo=UTC)
    quiet_streak = ["failed", "failed", "succeeded"]  # two in a row: quiet, and no recovery
    alerted = ["failed", "cancelled", "failed", "failed", "failed", "succeeded", "succeeded"]
    outcomes = quiet_streak + alerted
    said: list[tuple[bool, str] | None] = []
    for n, status in enumerate(outcomes):
        run_id = f"penguins-a-{n}"
        write_summary(
            store,
            RunSummary(run_id=run_id, pipeline="penguins", status=status,  # type: ignore[arg-type]
                       logical_time=start + timedelta(days=n)),
        )  # fmt: skip
        found = failure_alerting(store, event(status, run_id), spec, status)
        said.append(None if found is None else (found.wanted, found.why))
    assert said == [
        (False, "failure 1 in a row: notify.failures.after is 3"),
        (False, "failure 2 in a row: notify.failures.after is 3"),
        None,  # the usual policy: on_success never
        (False, "failure 1 in a row: notify.failures.after is 3"),
        None,  # cancelled: a person stopped it, neither a failure nor a success
        (False, "failure 2 in a row: notify.failures.after is 3"),
        (True, "failure 3 in a row (alerting from 3)"),
        (True, "failure 4 in a row (alerting from 3)"),
        (True, "recovered after 4 failures in a row"),
        None,  # the next success is no recovery
    ]
    # a redelivered event of an earlier run gets the same answer once later runs are in
    assert failure_alerting(store, event("failed", "penguins-a-5"), spec, "failed") == (
        failure_alerting(store, event("failed", "penguins-a-5"), spec, "failed")
    )
    again = failure_alerting(store, event("failed", "penguins-a-5"), spec, "failed")
    assert again is not None and again.wanted is False


def test_with_failures_after_1_the_usual_policy_decides(tmp_path: Path) -> None:
    from mlrelay_notifier.policy import failure_alerting

    store = LocalFolderStore(tmp_path)
    assert failure_alerting(store, event("failed"), NotifySpec(), "failed") is None
