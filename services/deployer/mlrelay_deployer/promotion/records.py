"""The promotion's writes to the ledger: the run's record (`runs/<run_id>/promotion.json`), the
index of undecided canaries (`promotions/canaries/`), and each state's one event."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import structlog

from mlrelay.contracts import LifecycleEvent
from mlrelay.ports.container import Ports
from mlrelay.promotion_record import PromotionRecord, read_promotion
from mlrelay.stage import keys

log = structlog.get_logger()

__all__ = ["CanaryEntry", "PromotionRecord", "announce", "list_canaries", "read_promotion"]


def write_record(ports: Ports, run_id: str, record: PromotionRecord) -> None:
    ports.store.write(keys.promotion(run_id), record.model_dump_json(indent=2).encode())


@dataclass(frozen=True)
class CanaryEntry:
    run_id: str
    pipeline: str
    endpoint: str
    auto_promote_at: str | None


def index_canary(ports: Ports, run_id: str, record: PromotionRecord) -> None:
    entry = {
        "run_id": run_id,
        "pipeline": record.pipeline,
        "endpoint": record.endpoint,
        "auto_promote_at": record.auto_promote_at,
    }
    ports.store.write(keys.canary(run_id), json.dumps(entry).encode())


def unindex_canary(ports: Ports, run_id: str) -> None:
    ports.store.delete(keys.canary(run_id))


def list_canaries(ports: Ports) -> list[CanaryEntry]:
    """The undecided canaries, from their index (one list and one read each)."""
    found = []
    for key in ports.store.list(keys.CANARIES):
        raw = ports.store.read(key)
        if raw is None:  # removed since the list
            continue
        data = json.loads(raw)
        found.append(
            CanaryEntry(
                str(data["run_id"]),
                str(data["pipeline"]),
                str(data["endpoint"]),
                data.get("auto_promote_at"),
            )
        )
    return found


def is_first(record: PromotionRecord) -> bool:
    """The endpoint served nothing before: the model went straight to 100 %."""
    return not record.previous_traffic


def promotion_event(run_id: str, record: PromotionRecord) -> LifecycleEvent:
    """The event of the record's state (canary, promoted, rolled_back, failed)."""
    base: dict[str, Any] = {"endpoint": record.endpoint}
    command = dict(record.command) if record.command else None
    who = (command or {}).get("requested_by")
    error = None
    if record.state == "canary":
        summary = f"model serves {record.canary_percent} % of {record.endpoint} (canary)"
        details = {
            **base,
            "model": record.model,
            "version_id": record.version_id,
            "deployed_model_id": record.deployed_model_id,
            "canary_percent": record.canary_percent,
            "traffic": record.traffic,
            "previous_traffic": record.previous_traffic,
            "champion_run_id": record.champion_run_id,
            "auto_promote_at": record.auto_promote_at,
        }
    elif record.state == "promoted":
        first = is_first(record)
        summary = f"model serves 100 % of {record.endpoint}" + (
            " (its first model)" if first else f", promoted by {who}"
        )
        details = {
            **base,
            "model": record.model,
            "version_id": record.version_id,
            "deployed_model_id": record.deployed_model_id,
            "traffic": record.traffic,
            "previous_traffic": record.previous_traffic,
            "champion_run_id": record.champion_run_id,
            "command": command,
            "first": first,
        }
    elif record.state == "rolled_back":
        superseded = (command or {}).get("superseded_by")
        summary = (
            f"canary rolled back on {record.endpoint}, superseded by run {superseded}"
            if superseded
            else f"canary rolled back on {record.endpoint} by {who}"
        )
        details = {
            **base,
            "model": record.model,
            "version_id": record.version_id,
            "deployed_model_id": record.deployed_model_id,
            "traffic": record.traffic,
            "previous_traffic": record.previous_traffic,
            "command": command,
        }
        if superseded:
            details["superseded_by"] = superseded
    else:
        summary = f"model not promoted to {record.endpoint}"
        error = record.error
        details = {**base, "reason": record.error}
    return LifecycleEvent(
        run_id=run_id,
        pipeline=record.pipeline,
        stage="promotion",
        status=record.state if record.state != "deploying" else "failed",
        summary=summary,
        error=error,
        details=details,
    )


def announce(ports: Ports, run_id: str, record: PromotionRecord) -> bool:
    """Publish the event of the record's state, once per run and state; True: published now."""
    if record.state == "deploying":
        return False
    marker = keys.promotion_published(run_id, record.state)
    if ports.store.read(marker) is not None:
        log.info("promotion_already_reported", state=record.state)
        return False
    ports.publish(promotion_event(run_id, record))
    ports.store.create(marker, b"")
    log.info("promotion_reported", state=record.state)
    return True
