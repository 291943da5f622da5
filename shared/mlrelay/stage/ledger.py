"""The run ledger and the create-only claim every stage takes before doing its work.

`runs/<run_id>/<stage>.json` is both the claim and the record: it is created (create-only) in
state `running` with a short lease, then overwritten with `done` and the stage's result, or
`failed` and the reason. While the work runs the lease is renewed (`LeaseKeeper`), so a long
export keeps its claim; a redelivered message finds the record and re-emits the result instead of
working again; a claim whose lease ran out (its worker died mid-stage) is taken over with a
compare-and-swap, one lease after the worker died. Every write after the claim (the final record,
the release) is a compare-and-swap on the claim's own generation too: a worker that stalled past
its lease and lost the claim to another never overwrites or deletes the new owner's record.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import structlog

from mlrelay.contracts import utc_now
from mlrelay.errors import PermanentError, TransientError
from mlrelay.ports.protocols import ObjectStore
from mlrelay.stage import keys
from mlrelay.stage.lease_keeper import LeaseKeeper
from mlrelay.stage.records import StageRecord, State

__all__ = [
    "StageOutcome",
    "StageRecord",
    "State",
    "claim_attempt",
    "list_runs",
    "read_run",
    "release_claim",
    "run_once",
    "take_over_expired",
]

log = structlog.get_logger()

_ATTEMPT: ContextVar[int] = ContextVar("claim_attempt", default=1)


def claim_attempt() -> int:
    """Inside `run_once`'s work: 1 on a fresh claim, more once a dead worker's claim was taken
    over (that worker may have done part of the work, e.g. posted without hearing back)."""
    return _ATTEMPT.get()


@dataclass(frozen=True)
class StageOutcome:
    record: StageRecord
    reused: bool

    @property
    def result(self) -> dict[str, Any]:
        return self.record.result or {}


def run_once(
    store: ObjectStore,
    key: str,
    stage: str,
    work: Callable[[], dict[str, Any]],
    *,
    lease: timedelta,
    now: Callable[[], datetime] = utc_now,
) -> StageOutcome:
    """Do `work` at most once per key, however often the message arrives.

    - first arrival: claim, work (the lease renewed meanwhile), record `done` (or `failed` on a
      PermanentError);
    - duplicate after completion: return the recorded outcome (`reused=True`);
    - duplicate while another delivery works: TransientError, so Pub/Sub retries later;
    - transient failure inside `work`: the claim is released and the error re-raised;
    - duplicate after the claimant died: its lease runs out and this delivery takes over.
    """
    started = now()
    claim_id = uuid.uuid4().hex
    claim = StageRecord(
        stage, "running", started.isoformat(), (started + lease).isoformat(), claim_id=claim_id
    )
    if not store.create(key, claim.to_json()):
        found = store.read_versioned(key)
        if found is None:
            raise TransientError(f"{key}: claim vanished while reading it; retry")
        data, generation = found
        existing = StageRecord.from_json(data)
        if existing.claim_id == claim_id:
            # our create landed but its answer was lost, and the store's retry was refused
            log.info("stage_claim_confirmed", stage=stage)
        elif existing.state in ("done", "failed"):
            log.info("stage_reused", stage=stage, state=existing.state)
            return StageOutcome(existing, reused=True)
        else:
            claim = take_over_expired(store, key, existing, generation, claim, started)
            log.warning("stage_claim_taken_over", stage=stage, attempts=claim.attempts)
    attempts = claim.attempts
    attempt = _ATTEMPT.set(attempts)
    try:
        with LeaseKeeper(store, key, claim_id, lease, now):
            result = work()
    except PermanentError as exc:
        failed = StageRecord(
            stage,
            "failed",
            claim.started_at,
            None,
            now().isoformat(),
            None,
            str(exc),
            exc.field,
            attempts,
            claim_id,
            exc.details or None,
        )
        return _finish(store, key, failed)
    except BaseException:
        release_claim(store, key, claim_id)
        raise
    finally:
        _ATTEMPT.reset(attempt)
    done = StageRecord(
        stage, "done", claim.started_at, None, now().isoformat(), result, attempts=attempts,
        claim_id=claim_id,
    )  # fmt: skip
    return _finish(store, key, done)


def _finish(store: ObjectStore, key: str, record: StageRecord) -> StageOutcome:
    """Record the outcome over our own claim only (compare-and-swap on its generation).

    A worker that stalled past its lease may find another delivery holding the claim: it then
    returns that delivery's outcome once it is recorded, or asks for redelivery while it works.
    A final record already ours (the answer to our write was lost) is our outcome."""
    while True:
        found = store.read_versioned(key)
        current = StageRecord.from_json(found[0]) if found is not None else None
        if found is None or current is None or current.claim_id != record.claim_id:
            state = current.state if current is not None else None
            log.warning("stage_claim_lost_before_recording", stage=record.stage, found=state)
            if current is not None and current.state in ("done", "failed"):
                return StageOutcome(current, reused=True)
            raise TransientError(
                f"{key}: this delivery's claim was taken over before it recorded its outcome; "
                "the redelivery reads the new owner's record"
            )
        if current.state != "running":
            return StageOutcome(current, reused=False)  # our write landed; its answer was lost
        if store.replace(key, record.to_json(), found[1]):
            return StageOutcome(record, reused=False)


def take_over_expired(
    store: ObjectStore,
    key: str,
    existing: StageRecord,
    generation: str,
    claim: StageRecord,
    started: datetime,
) -> StageRecord:
    """Take a `running` claim over once its lease has run out (its worker stopped renewing)."""
    lease_until = datetime.fromisoformat(existing.lease_until or existing.started_at)
    if lease_until > started:
        raise TransientError(f"{key}: another delivery is working on it until {lease_until}")
    taken = replace(claim, attempts=existing.attempts + 1)
    if not store.replace(key, taken.to_json(), generation):
        raise TransientError(f"{key}: another delivery took over the expired claim")
    return taken


def release_claim(store: ObjectStore, key: str, claim_id: str) -> None:
    """Give the claim back (a transient failure: the redelivery starts afresh), unless another
    delivery has taken it over meanwhile."""
    found = store.read_versioned(key)
    if found is not None and StageRecord.from_json(found[0]).claim_id == claim_id:
        store.delete_if(key, found[1])  # refused if it was taken over since the read


def read_run(store: ObjectStore, run_id: str) -> dict[str, StageRecord]:
    """Every stage record of one run, by stage name (not the run's promotion record, a
    PromotionRecord of its own shape: mlrelay.promotion_record.read_promotion)."""
    records = {}
    for key in store.list(keys.run_prefix(run_id)):
        if key.endswith(".json") and key != keys.promotion(run_id):
            data = store.read(key)
            if data is not None:
                records[key.rsplit("/", 1)[1].removesuffix(".json")] = StageRecord.from_json(data)
    return records


def list_runs(store: ObjectStore) -> list[str]:
    return sorted({key.split("/")[1] for key in store.list(keys.RUNS) if key.count("/") >= 2})
