from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mlrelay.adapters.local_folder import LocalFolderStore
from mlrelay.errors import PermanentError, TransientError
from mlrelay.stage.ledger import StageRecord, run_once

LEASE = timedelta(minutes=5)


@pytest.fixture
def store(tmp_path: Path) -> LocalFolderStore:
    return LocalFolderStore(tmp_path / "bucket")


def test_work_runs_once_and_duplicates_get_the_recorded_result(store: LocalFolderStore) -> None:
    calls: list[int] = []

    def work() -> dict[str, int]:
        calls.append(1)
        return {"n": len(calls)}

    first = run_once(store, "runs/r/s.json", "s", work, lease=LEASE)
    second = run_once(store, "runs/r/s.json", "s", work, lease=LEASE)
    assert calls == [1]
    assert (first.reused, second.reused) == (False, True)
    assert second.result == {"n": 1}


def test_a_live_claim_makes_a_duplicate_retry_later(store: LocalFolderStore) -> None:
    now = datetime.now(UTC)
    claim = StageRecord("s", "running", now.isoformat(), (now + LEASE).isoformat())
    store.create("runs/r/s.json", claim.to_json())
    with pytest.raises(TransientError, match="another delivery is working on it"):
        run_once(store, "runs/r/s.json", "s", lambda: {}, lease=LEASE)


def test_an_expired_claim_is_taken_over(store: LocalFolderStore) -> None:
    then = datetime.now(UTC) - timedelta(hours=1)
    claim = StageRecord("s", "running", then.isoformat(), (then + LEASE).isoformat())
    store.create("runs/r/s.json", claim.to_json())
    outcome = run_once(store, "runs/r/s.json", "s", lambda: {"ok": True}, lease=LEASE)
    assert outcome.result == {"ok": True}
    assert outcome.record.attempts == 2


def test_a_transient_failure_releases_the_claim(store: LocalFolderStore) -> None:
    def flaky() -> dict[str, bool]:
        raise TransientError("503")

    with pytest.raises(TransientError):
        run_once(store, "runs/r/s.json", "s", flaky, lease=LEASE)
    assert store.read("runs/r/s.json") is None
    assert run_once(store, "runs/r/s.json", "s", lambda: {"ok": True}, lease=LEASE).result


def test_a_permanent_failure_is_recorded_and_not_retried(store: LocalFolderStore) -> None:
    def broken() -> dict[str, bool]:
        raise PermanentError("source", "table gone", "fix the registry")

    first = run_once(store, "runs/r/s.json", "s", broken, lease=LEASE)
    again = run_once(store, "runs/r/s.json", "s", lambda: {"ok": True}, lease=LEASE)
    assert first.record.state == again.record.state == "failed"
    assert again.reused and again.record.error_field == "source"


def test_work_longer_than_the_lease_keeps_its_claim(store: LocalFolderStore) -> None:
    """The claim's lease is renewed while the work runs: a duplicate arriving after the first
    lease would have run out still finds the claim held, and the work runs once."""
    lease = timedelta(seconds=1.5)
    calls: list[int] = []
    probes: list[str] = []

    def slow_work() -> dict[str, int]:
        calls.append(1)
        time.sleep(4.0)  # well past the first lease
        return {"n": len(calls)}

    def duplicate() -> None:
        time.sleep(3.0)
        try:
            run_once(store, "runs/r/s.json", "s", slow_work, lease=lease)
            probes.append("ran")
        except TransientError as exc:
            probes.append(str(exc))

    probe = threading.Thread(target=duplicate)
    probe.start()
    outcome = run_once(store, "runs/r/s.json", "s", slow_work, lease=lease)
    probe.join()
    assert calls == [1]
    assert outcome.record.state == "done" and outcome.record.attempts == 1
    assert len(probes) == 1 and "another delivery is working on it" in probes[0]


def test_a_claim_whose_worker_died_is_taken_over_one_lease_later(
    store: LocalFolderStore,
) -> None:
    """A worker that dies mid-stage stops renewing: its claim runs out after one lease (not after
    a stage-long lease) and the next delivery takes it over."""
    lease = timedelta(seconds=1)
    now = datetime.now(UTC)
    dead = StageRecord("s", "running", now.isoformat(), (now + lease).isoformat(), claim_id="dead")
    store.create("runs/r/s.json", dead.to_json())
    with pytest.raises(TransientError):
        run_once(store, "runs/r/s.json", "s", lambda: {"ok": True}, lease=lease)
    time.sleep(1.2)
    outcome = run_once(store, "runs/r/s.json", "s", lambda: {"ok": True}, lease=lease)
    assert outcome.result == {"ok": True}
    assert outcome.record.attempts == 2


def test_a_worker_that_lost_its_claim_does_not_release_the_new_owners(
    store: LocalFolderStore,
) -> None:
    """A stalled worker whose claim was taken over, then fails transiently, leaves the new
    owner's claim in place."""
    lease = timedelta(seconds=30)

    def stalled_then_fails() -> dict[str, bool]:
        record = StageRecord.from_json(store.read("runs/r/s.json") or b"")
        taken = StageRecord("s", "running", record.started_at, record.lease_until, claim_id="new")
        store.write("runs/r/s.json", taken.to_json())  # another delivery took the claim over
        raise TransientError("503")

    with pytest.raises(TransientError):
        run_once(store, "runs/r/s.json", "s", stalled_then_fails, lease=lease)
    kept = StageRecord.from_json(store.read("runs/r/s.json") or b"")
    assert kept.claim_id == "new" and kept.state == "running"


class LostAnswerStore(LocalFolderStore):
    """A bucket whose first create lands but whose answer is lost: the client's retry of the
    create-only write is then refused (412), as GCS does when the first write succeeded."""

    def create(self, key: str, data: bytes) -> bool:
        super().create(key, data)
        return False


def test_a_claim_whose_create_answer_was_lost_is_recognised_as_ours(tmp_path: Path) -> None:
    store = LostAnswerStore(tmp_path / "bucket")
    calls: list[int] = []

    def work() -> dict[str, int]:
        calls.append(1)
        return {"n": 1}

    outcome = run_once(store, "runs/r/s.json", "s", work, lease=LEASE)
    assert calls == [1]  # not "another delivery is working on it" until the lease runs out
    assert outcome.record.state == "done" and outcome.record.attempts == 1


def test_the_work_knows_whether_it_took_a_dead_workers_claim_over(
    store: LocalFolderStore,
) -> None:
    from mlrelay.stage.ledger import claim_attempt

    seen: list[int] = []
    run_once(store, "runs/r/a.json", "a", lambda: {"n": seen.append(claim_attempt())}, lease=LEASE)
    then = datetime.now(UTC) - timedelta(hours=1)
    dead = StageRecord("b", "running", then.isoformat(), then.isoformat(), claim_id="dead")
    store.create("runs/r/b.json", dead.to_json())
    run_once(store, "runs/r/b.json", "b", lambda: {"n": seen.append(claim_attempt())}, lease=LEASE)
    assert seen == [1, 2]
    assert claim_attempt() == 1  # outside any work
