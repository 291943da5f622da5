"""Topic names: the one place they are defined, shared by code, the local bus and Terraform."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

DEFAULT_TOPICS: dict[str, str] = {
    "runs": "mlrelay-runs",
    "snapshots": "mlrelay-snapshots",
    "deploys": "mlrelay-deploys",
    "lifecycle": "mlrelay-lifecycle",
    "dead_letter": "mlrelay-dead-letter",
}


@dataclass(frozen=True)
class Topics:
    runs: str = DEFAULT_TOPICS["runs"]
    snapshots: str = DEFAULT_TOPICS["snapshots"]
    deploys: str = DEFAULT_TOPICS["deploys"]
    lifecycle: str = DEFAULT_TOPICS["lifecycle"]
    dead_letter: str = DEFAULT_TOPICS["dead_letter"]

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Topics:
        """`MLRELAY_TOPIC_RUNS`, `MLRELAY_TOPIC_SNAPSHOTS`, ... override the defaults."""
        values = {f.name: env.get(f"MLRELAY_TOPIC_{f.name.upper()}", "") for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if v})

    def all(self) -> list[str]:
        return [getattr(self, f.name) for f in fields(self)]
