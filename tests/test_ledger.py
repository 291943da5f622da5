from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mlrelay.errors import PermanentError, TransientError
from mlrelay.ledger import StageRecord, run_once
from mlrelay.local_store import LocalFolderStore

LEASE = timedelta(minutes=5)


@pytest.fixture
def store(tmp_path: Path) -> LocalFolderStore:
    return LocalFolderStore(tmp_path / "bucket")


def test_create_only_write_refuses_an_existing_key(store: LocalFolderStore) -> None:
    assert store.create("a/b.json", b"1")
    assert not store.create("a/b.json", b"2")
    assert store.read("a/b.json") == b"1"


def test_compare_and_swap_needs_the_current_generation(store: LocalFolderStore) -> None:
    store.create("k", b"1")
    _, generation = store.read_versioned("k") or (b"", "")
    assert store.replace("k", b"2", generation)
    assert not store.replace("k", b"3", generation)
    assert store.read("k") == b"2"


def test_keys_cannot_escape_the_bucket(store: LocalFolderStore) -> None:
    with pytest.raises(ValueError, match="escapes"):
        store.read("../../etc/passwd")


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
