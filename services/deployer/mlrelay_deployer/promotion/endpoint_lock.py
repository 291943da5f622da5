"""One promotion at a time moves an endpoint's models and split.

Two runs of a pipeline can succeed at the same moment (a backfill, a retry beside the scheduled
run): each would read the endpoint's split, record it as the one to restore, and deploy beside
it, and one canary per endpoint would not hold. `holding_endpoint` is a lease in the bucket
(`promotions/endpoints/<endpoint>.lock`, create-only, renewed while held like a stage's claim,
taken over once a dead holder's lease has run out): a second promotion finds it held and asks
for redelivery (TransientError) instead of moving the endpoint. Re-entrant in one delivery: a
newer canary superseding an older one carries out the older one's rollback under its own hold.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from mlrelay.contracts import utc_now
from mlrelay.errors import TransientError
from mlrelay.ports.container import Ports
from mlrelay.stage import keys
from mlrelay.stage.lease_keeper import LeaseKeeper
from mlrelay.stage.ledger import release_claim, take_over_expired
from mlrelay.stage.records import StageRecord

_HELD: ContextVar[frozenset[str]] = ContextVar("endpoints_held", default=frozenset())


@contextmanager
def holding_endpoint(ports: Ports, endpoint: str) -> Iterator[None]:
    """Hold `endpoint` for the `with` block; TransientError when another promotion holds it."""
    if endpoint in _HELD.get():
        yield
        return
    store, lease = ports.store, ports.settings.claim_lease
    key = keys.promotion_endpoint_lock(endpoint)
    started = utc_now()
    claim_id = uuid.uuid4().hex
    claim = StageRecord(
        "endpoint", "running", started.isoformat(), (started + lease).isoformat(),
        claim_id=claim_id,
    )  # fmt: skip
    if not store.create(key, claim.to_json()):
        found = store.read_versioned(key)
        if found is None:
            raise TransientError(f"{key}: the endpoint's lock went away while reading it; retry")
        existing = StageRecord.from_json(found[0])
        if existing.claim_id != claim_id:  # else: our create landed, its answer was lost
            try:
                take_over_expired(store, key, existing, found[1], claim, started)
            except TransientError:
                raise TransientError(
                    f"another promotion is moving endpoint {endpoint} (lease until "
                    f"{existing.lease_until}); redeliver"
                ) from None
    token = _HELD.set(_HELD.get() | {endpoint})
    try:
        with LeaseKeeper(store, key, claim_id, lease, utc_now):
            yield
    finally:
        _HELD.reset(token)
        release_claim(store, key, claim_id)
