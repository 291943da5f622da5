"""Promote to 100 % and Roll back are asked only while the run's model is a canary: the run's
PromotionRecord (`runs/<run_id>/promotion.json`) says where it stands. Any other state is
refused with an ephemeral answer naming it ("already promoted by @ana at …"), nothing published:
the card's buttons may be older than the model's state (another person clicked first, the
watchdog auto-promoted it, or `mlrelay promote` was used)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from mlrelay.ports.protocols import ObjectStore
from mlrelay.promotion_record import PromotionRecord, read_promotion

PROMOTION_ACTIONS = ("promote", "rollback")


def _at(text: object) -> str:
    if not isinstance(text, str):
        return "an unknown time"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text[:40]
    moment = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


def _by(command: dict[str, Any] | None, done: str, auto_at: str | None) -> str:
    """ "promoted by <@U1> at …" / "auto-promoted at …" / "promoted by cli:ana at …"."""
    command = command or {}
    by, when = command.get("requested_by"), command.get("requested_at")
    if command.get("source") == "watchdog" or not isinstance(by, str):
        return f"auto-{done} at {_at(when or auto_at)}"
    shown = f"<@{by.removeprefix('slack:')}>" if by.startswith("slack:") else by[:80]
    return f"{done} by {shown} at {_at(when)}"


def state_words(record: PromotionRecord) -> str:
    """What the model's state is, for the person whose click is refused."""
    if record.state == "promoted":
        if not record.previous_traffic and not record.command:
            return f"already serves 100 % of `{record.endpoint}` as its first model"
        return "was already " + _by(record.command, "promoted", record.auto_promote_at)
    if record.state == "rolled_back":
        return "was already " + _by(record.command, "rolled back", None)
    if record.state == "deploying":
        return f"is still being deployed to `{record.endpoint}`: click once it serves as a canary"
    return f"failed to deploy to `{record.endpoint}`: {(record.error or 'no error recorded')[:200]}"


def promotion_refusal(store: ObjectStore, run_id: str, action: str) -> str | None:
    """None: the run's model is a canary, the click may go on; else what to answer."""
    record = read_promotion(store, run_id)
    if record is None:
        return f"Nothing was done: `{run_id}` has no model on an endpoint to {action}."
    if record.state == "canary":
        return None
    return f"Nothing was done: the model of `{run_id}` {state_words(record)}."
