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


def test_two_workers_racing_after_a_lease_expiry_keep_the_new_owners_record(
    store: LocalFolderStore,
) -> None:
    """Worker A stalls past its lease; worker B takes the claim over and records its outcome;
    when A wakes up, its final write must not overwrite B's record."""
    lease = timedelta(seconds=30)
    key = "runs/r/s.json"
    later = datetime.now(UTC) + 2 * lease  # B's clock: A's lease has run out

    def stalled_worker() -> dict[str, str]:
        b = run_once(store, key, "s", lambda: {"by": "B"}, lease=lease, now=lambda: later)
        assert b.record.attempts == 2 and not b.reused  # B took A's expired claim over
        return {"by": "A"}

    a = run_once(store, key, "s", stalled_worker, lease=lease)
    kept = StageRecord.from_json(store.read(key) or b"")
    assert kept.state == "done" and kept.result == {"by": "B"}
    assert a.reused and a.result == {"by": "B"}  # A reports the owner's outcome, not its own


def test_a_stalled_worker_that_fails_permanently_does_not_overwrite_the_new_owner(
    store: LocalFolderStore,
) -> None:
    lease = timedelta(seconds=30)
    later = datetime.now(UTC) + 2 * lease

    def stalled_then_refused() -> dict[str, str]:
        run_once(store, "runs/r/s.json", "s", lambda: {"by": "B"}, lease=lease, now=lambda: later)
        raise PermanentError("source", "table gone", "fix the registry")

    outcome = run_once(store, "runs/r/s.json", "s", stalled_then_refused, lease=lease)
    kept = StageRecord.from_json(store.read("runs/r/s.json") or b"")
    assert kept.state == "done" and kept.result == {"by": "B"}
    assert outcome.reused and outcome.record.state == "done"


def test_a_stalled_worker_still_running_asks_for_redelivery(store: LocalFolderStore) -> None:
    """A's claim was taken over and the new owner is still at work: A neither records nor
    returns an outcome; its message comes back and then reads the owner's record."""
    lease = timedelta(seconds=30)
    key = "runs/r/s.json"

    def stalled_worker() -> dict[str, str]:
        record = StageRecord.from_json(store.read(key) or b"")
        taken = StageRecord("s", "running", record.started_at, record.lease_until, claim_id="B")
        store.write(key, taken.to_json())  # B took the expired claim over and is working
        return {"by": "A"}

    with pytest.raises(TransientError, match="taken over"):
        run_once(store, key, "s", stalled_worker, lease=lease)
    kept = StageRecord.from_json(store.read(key) or b"")
    assert kept.claim_id == "B" and kept.state == "running"


class TakeoverDuringRelease(LocalFolderStore):
    """Between worker A's read of its claim and its delete, B takes the claim over and
    finishes (the window an unconditional delete loses B's record in)."""

    armed = False

    def read_versioned(self, key: str) -> tuple[bytes, str] | None:
        found = super().read_versioned(key)
        if self.armed:
            self.armed = False
            later = datetime.now(UTC) + timedelta(hours=1)
            run_once(self, key, "s", lambda: {"by": "B"}, lease=LEASE, now=lambda: later)
        return found


def test_a_release_after_losing_the_claim_leaves_the_new_owners_record(tmp_path: Path) -> None:
    store = TakeoverDuringRelease(tmp_path / "bucket")

    def fails_transiently() -> dict[str, bool]:
        store.armed = True  # the release's read is the one B races
        raise TransientError("503")

    with pytest.raises(TransientError):
        run_once(store, "runs/r/s.json", "s", fails_transiently, lease=LEASE)
    kept = StageRecord.from_json(store.read("runs/r/s.json") or b"")
    assert kept.state == "done" and kept.result == {"by": "B"}
