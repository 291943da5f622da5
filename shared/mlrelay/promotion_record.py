"""A run's promotion as the ledger keeps it (`runs/<run_id>/promotion.json`): written by the
deployer's promotion flow, read by the notifier's card and the Slack door (which buttons a card
shows, which clicks are still valid) and by `mlrelay promote` / `rollback`."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mlrelay.ports.protocols import ObjectStore
from mlrelay.stage import keys

PromotionState = Literal["deploying", "canary", "promoted", "rolled_back", "failed"]


class PromotionRecord(BaseModel):
    model_config = ConfigDict(extra="ignore")

    state: PromotionState
    pipeline: str
    endpoint: str
    model: str = ""  # ModelVersion.name
    version_id: str = ""
    deployed_model_id: str = ""
    canary_percent: int = 0
    traffic: dict[str, int] = Field(default_factory=dict)  # the split now
    previous_traffic: dict[str, int] = Field(default_factory=dict)  # the split before the canary
    champion_run_id: str | None = None
    auto_promote_at: str | None = None  # ISO time, or None
    command: dict[str, Any] | None = None  # who promoted / rolled back, when, from where
    error: str | None = None


def read_promotion(store: ObjectStore, run_id: str) -> PromotionRecord | None:
    raw = store.read(keys.promotion(run_id))
    if raw is None:
        return None
    return PromotionRecord.model_validate(json.loads(raw))
