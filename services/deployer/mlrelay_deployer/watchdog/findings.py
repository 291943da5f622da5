"""What one watchdog pass found: each finding names the run (or slot), what is wrong and whether
this pass said it (False: an earlier pass already did; nothing is published twice)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

FindingKind = Literal[
    "stuck",
    "deadline_missed",
    "missed",
    "reported",
    "cancel_requested",
    "approval_timeout",
    "auto_promote",
]


@dataclass(frozen=True)
class Finding:
    kind: FindingKind
    run_id: str
    pipeline: str
    stage: str
    what: str
    first: bool  # True: this pass published it


@dataclass
class PassReport:
    open_runs: int = 0
    schedules: int = 0
    slots_checked: int = 0
    findings: list[Finding] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "open_runs": self.open_runs,
            "schedules": self.schedules,
            "slots_checked": self.slots_checked,
            "findings": [asdict(f) for f in self.findings],
        }
