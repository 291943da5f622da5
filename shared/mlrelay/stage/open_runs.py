"""The index of open runs: `open/<run_id>.json`, one per run accepted and not yet settled.

The trigger writes it (create-only) when it accepts a run; the notifier deletes it when it writes
the run's history summary (the run's final outcome). The watchdog lists this prefix, so a pass
costs one list plus a read per open run, however long the ledger's history grows. An entry whose
run has a summary (a delete that failed, or an echo of a settled run) is removed by the watchdog.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime

from mlrelay.ports.protocols import ObjectStore
from mlrelay.stage import keys


@dataclass(frozen=True)
class OpenRun:
    run_id: str
    pipeline: str
    logical_time: str  # ISO-8601, the slot (or the request's publish time)
    accepted_at: str
    trigger: str
    schedule: str | None = None

    @property
    def slot(self) -> datetime:
        return datetime.fromisoformat(self.logical_time)

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> OpenRun:
        raw = json.loads(data)
        return cls(**{k: raw.get(k) for k in cls.__dataclass_fields__})


def mark_open(store: ObjectStore, run: OpenRun) -> None:
    """Create-only: a redelivered acceptance leaves the entry as it is."""
    store.create(keys.open_run(run.run_id), run.to_json())


def mark_settled(store: ObjectStore, run_id: str) -> None:
    """The run has its final outcome: it leaves the index (a missing entry is fine)."""
    store.delete(keys.open_run(run_id))


def list_open(store: ObjectStore) -> list[OpenRun]:
    """Every open run, oldest slot first; an entry that vanished meanwhile is skipped."""
    found = []
    for key in store.list(keys.OPEN_RUNS):
        if not key.endswith(".json"):
            continue
        data = store.read(key)
        if data is not None:
            found.append(OpenRun.from_json(data))
    return sorted(found, key=lambda run: (run.logical_time, run.run_id))
