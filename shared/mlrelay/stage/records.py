"""A stage's record in the run ledger (`runs/<run_id>/<stage>.json`): claim, then result."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

State = Literal["running", "done", "failed"]


@dataclass(frozen=True)
class StageRecord:
    stage: str
    state: State
    started_at: str
    lease_until: str | None = None
    finished_at: str | None = None
    result: dict[str, Any] | None = None
    error: str | None = None
    error_field: str | None = None
    attempts: int = 1
    claim_id: str | None = None  # which delivery holds a `running` claim
    error_details: dict[str, Any] | None = None  # a PermanentError's details (e.g. `quality`)

    def to_json(self) -> bytes:
        return json.dumps(self.__dict__, indent=2, sort_keys=True, default=str).encode()

    @classmethod
    def from_json(cls, data: bytes) -> StageRecord:
        return cls(**json.loads(data))
