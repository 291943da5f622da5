"""Keep a stage's claim alive while its work runs.

A claim (`runs/<run_id>/<stage>.json` in state `running`) carries a short lease. While the worker
lives, a background thread renews it every third of the lease with a compare-and-swap on the
record's generation; so a live worker keeps its claim however long the work takes, and the claim of
a worker that died mid-stage runs out one lease later, when a redelivery takes it over.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from types import TracebackType

import structlog

from mlrelay.ports.protocols import ObjectStore
from mlrelay.stage.records import StageRecord

log = structlog.get_logger()


class LeaseKeeper:
    """Renews the lease of claim `claim_id` at `key` until the `with` block ends."""

    def __init__(
        self,
        store: ObjectStore,
        key: str,
        claim_id: str,
        lease: timedelta,
        now: Callable[[], datetime],
    ) -> None:
        self.store = store
        self.key = key
        self.claim_id = claim_id
        self.lease = lease
        self.now = now
        self.renewals = 0
        self.lost = False
        self._stop = threading.Event()
        # the thread logs with the caller's bound context (run id, stage)
        context = contextvars.copy_context()
        self._thread = threading.Thread(
            target=context.run, args=(self._keep,), name=f"lease {key}", daemon=True
        )

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=self.lease.total_seconds())

    def _keep(self) -> None:
        interval = self.lease.total_seconds() / 3
        while not self._stop.wait(interval):
            try:
                kept = self.renew()
            except Exception as exc:  # a store hiccup: try again next interval
                log.warning("stage_lease_renewal_failed", key=self.key, error=str(exc))
                continue
            if not kept:
                if not self._stop.is_set():
                    self.lost = True
                    log.warning("stage_claim_lost", key=self.key)
                return

    def renew(self) -> bool:
        """Push the lease out by one lease from now; False when the claim is no longer ours."""
        found = self.store.read_versioned(self.key)
        if found is None:
            return False
        data, generation = found
        record: StageRecord = StageRecord.from_json(data)
        if record.state != "running" or record.claim_id != self.claim_id:
            return False
        renewed = replace(record, lease_until=(self.now() + self.lease).isoformat())
        if not self.store.replace(self.key, renewed.to_json(), generation):
            return False
        self.renewals += 1
        return True
