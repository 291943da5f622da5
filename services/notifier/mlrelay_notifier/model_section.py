"""The run card's model section: where the run's trained model stands on its endpoint.

The ledger's PromotionRecord (`runs/<run_id>/promotion.json`, written by the deployer's promotion
flow) is what the card shows, so every delivery of every event renders the same section and a
redelivered older promotion event cannot undo a newer state. Only when the ledger has no record
(yet) does the promotion event being posted say it:

| state | the section says |
|---|---|
| canary | "Challenger v3 serves 10 % of `churn` beside the champion (run `…`, 90 %)", and when it
  promotes by itself; the card offers Promote to 100 % and Roll back |
| promoted | "v3 serves 100 % of `churn`" and "promoted by @ana at …" (or "auto-promoted at …", or
  "first model on `churn`") |
| rolled_back | "rolled back by @ana at …: the previous split restored (…)" |
| failed | a red line with the error (the channel hears it: mlrelay_notifier.notify) |
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from mlrelay.contracts import LifecycleEvent
from mlrelay.ports.protocols import ObjectStore
from mlrelay.promotion_record import PromotionRecord, read_promotion

STATES = ("deploying", "canary", "promoted", "rolled_back", "failed")
EMOJI = {
    "deploying": ":hourglass_flowing_sand:",
    "canary": ":hatching_chick:",
    "promoted": ":trophy:",
    "rolled_back": ":rewind:",
    "failed": ":red_circle:",
}
CONSOLE_MARK = {
    "deploying": "[deploying]",
    "canary": "[canary]",
    "promoted": "[promoted]",
    "rolled_back": "[rolled back]",
    "failed": "[PROMOTION FAILED]",
}
ERROR_CHARS = 500


@dataclass(frozen=True)
class ModelSection:
    state: str  # one of STATES
    endpoint: str
    version_id: str = ""
    deployed_model_id: str = ""
    canary_percent: int = 0
    traffic: dict[str, int] = field(default_factory=dict)  # the split now
    previous_traffic: dict[str, int] = field(default_factory=dict)  # the split before
    champion_run_id: str | None = None
    auto_promote_at: str | None = None
    command: dict[str, Any] | None = None  # who promoted / rolled back, when, from where
    first: bool = False  # the endpoint served nothing before: straight to 100 %
    error: str | None = None

    @property
    def open(self) -> bool:
        """The canary waits for a person: Promote to 100 % and Roll back are offered."""
        return self.state == "canary"


def from_record(record: PromotionRecord) -> ModelSection:
    return ModelSection(
        state=record.state,
        endpoint=record.endpoint,
        version_id=record.version_id,
        deployed_model_id=record.deployed_model_id,
        canary_percent=record.canary_percent,
        traffic=dict(record.traffic),
        previous_traffic=dict(record.previous_traffic),
        champion_run_id=record.champion_run_id,
        auto_promote_at=record.auto_promote_at,
        command=record.command,
        first=record.state == "promoted" and not record.previous_traffic,
        error=record.error,
    )


def _percent_map(value: object) -> dict[str, int]:
    if not isinstance(value, dict):
        return {}
    return {str(k): int(v) for k, v in value.items() if isinstance(v, int | float)}


def _text(value: object) -> str | None:
    return str(value) if isinstance(value, str) and value else None


def from_event(event: LifecycleEvent) -> ModelSection | None:
    """What a promotion event says (`details` as the promotion flow publishes them)."""
    if event.stage != "promotion" or event.status not in STATES:
        return None
    d = event.details
    command = d.get("command")
    return ModelSection(
        state=event.status,
        endpoint=str(d.get("endpoint") or "?"),
        version_id=str(d.get("version_id") or ""),
        deployed_model_id=str(d.get("deployed_model_id") or ""),
        canary_percent=int(d.get("canary_percent") or 0),
        traffic=_percent_map(d.get("traffic")),
        previous_traffic=_percent_map(d.get("previous_traffic")),
        champion_run_id=_text(d.get("champion_run_id")),
        auto_promote_at=_text(d.get("auto_promote_at")),
        command=command if isinstance(command, dict) else None,
        first=bool(d.get("first")),
        error=event.error if event.status == "failed" else None,
    )


def read_model(
    store: ObjectStore, run_id: str, event: LifecycleEvent | None = None
) -> ModelSection | None:
    """The section the card shows: the ledger's record, else the promotion event's own word.
    A `promotion.failed` the record does not (yet) carry adds its error to the record's state."""
    record = read_promotion(store, run_id)
    said = from_event(event) if event is not None else None
    if record is None:
        return said
    section = from_record(record)
    if said is not None and said.state == "failed" and section.error is None:
        section = replace(section, error=said.error)
    return section


def at(text: object) -> str:
    """An ISO time as the card writes times: "2026-03-01 09:30:00 UTC"."""
    if not isinstance(text, str):
        return "?"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text[:40]
    moment = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


def split_words(traffic: dict[str, int]) -> str:
    """{"111": 90, "222": 10} -> "111: 90 %, 222: 10 %" (deployed model id: share)."""
    if not traffic:
        return "nothing deployed"
    return ", ".join(f"{k}: {v} %" for k, v in sorted(traffic.items(), key=lambda kv: -kv[1]))


def _champion_share(section: ModelSection) -> int:
    if section.deployed_model_id in section.traffic:
        return sum(v for k, v in section.traffic.items() if k != section.deployed_model_id)
    return 100 - section.canary_percent


def _commanded(section: ModelSection, done: str) -> str:
    """ "promoted by <@U1> at …", "auto-promoted at …" (the watchdog's auto_promote_after)."""
    from mlrelay_notifier.card_actions import who

    command = section.command or {}
    by, when = command.get("requested_by"), command.get("requested_at")
    if command.get("source") == "watchdog" or not isinstance(by, str):
        return f"auto-{done} at {at(when or section.auto_promote_at)}"
    return f"{done} by {who(by)} at {at(when)}"


def model_lines(section: ModelSection, *, console: bool = False) -> list[str]:
    """The section's lines (Slack mrkdwn; `console`: marks instead of emoji codes)."""
    from mlrelay_notifier.render import escape

    mark = CONSOLE_MARK[section.state] if console else EMOJI[section.state]
    endpoint = f"`{escape(section.endpoint)}`"
    version = f"v{escape(section.version_id)}" if section.version_id else "the model"
    if section.state == "deploying":
        lines = [f"{mark} *Model* {version} being deployed to {endpoint}"]
    elif section.state == "canary":
        champion = f"run `{escape(section.champion_run_id)}`, " if section.champion_run_id else ""
        line = (
            f"{mark} *Model* Challenger {version} serves {section.canary_percent} % of {endpoint} "
            f"beside the champion ({champion}{_champion_share(section)} %)"
        )
        if section.auto_promote_at:
            line += f" · auto-promotes at {at(section.auto_promote_at)}"
        lines = [line]
    elif section.state == "promoted":
        if section.first and not section.command:
            how = f"first model on {endpoint}"
        else:
            how = _commanded(section, "promoted")
        lines = [f"{mark} *Model* {version} serves 100 % of {endpoint}", how]
    elif section.state == "rolled_back":
        lines = [
            f"{mark} *Model* {version} on {endpoint} {_commanded(section, 'rolled back')}: the "
            f"previous split restored (`{escape(split_words(section.traffic))}`)"
        ]
    else:
        lines = []
    if section.error or section.state == "failed":
        error = escape((section.error or "no error recorded").strip()[:ERROR_CHARS])
        red = CONSOLE_MARK["failed"] if console else EMOJI["failed"]
        lines.append(f"{red} *Promotion failed* on {endpoint}: {error}")
    return lines
