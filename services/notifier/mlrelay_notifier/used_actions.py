"""Which of a run card's buttons were used, by whom and when: read from the ledger, never from
the event being posted, so every delivery of every event renders the same card.

- retry / rerun: the attempts the trigger made from this run (`commands/<original>/attempts.json`,
  entries `of` this run);
- cancel, backfill, approve, reject: the consumer's claim
  `commands/<run_id>/<action>-<state>.done.json` in state `done` (carried out; a refused command
  leaves the button), with who asked from the consumer's record or else from the door's claim of
  the same name without `.done`;
- the event's own `details.command` (a `pipeline.cancelled` or `pipeline.rejected` names who
  asked), for a ledger written by a consumer that records no claim;
- and a run the trigger accepted as a backfill (its trigger record): its slot was backfilled.

Promote and Roll back have no line here: the card's model section says who moved the model and
when, from the run's PromotionRecord (mlrelay_notifier.model_section).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mlrelay.ports.protocols import ObjectStore
from mlrelay.stage import keys
from mlrelay.stage.records import StageRecord

DONE = ".done.json"
ATTEMPT_ACTIONS = ("retry", "rerun")
MODEL_ACTIONS = ("promote", "rollback")  # the model section's lines say who used them


@dataclass(frozen=True)
class UsedAction:
    action: str  # a CommandAction
    requested_by: str  # as recorded: `slack:<user id>`, `cli:<who>`, ...
    requested_at: datetime
    outcome: str = ""  # what it made, e.g. `attempt <run id>`


def original_of(run_id: str, records: dict[str, StageRecord]) -> str:
    """The logical run's first run id: the trigger record's `retry_of`, else the run itself."""
    trigger = records.get("trigger")
    original = (trigger.result or {}).get("retry_of") if trigger is not None else None
    return str(original) if original else run_id


def _when(text: object) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def attempts_made(
    store: ObjectStore, run_id: str, records: dict[str, StageRecord]
) -> list[UsedAction]:
    """The retries and reruns made from this run, oldest first."""
    raw = store.read(keys.attempts(original_of(run_id, records)))
    made: list[dict[str, Any]] = json.loads(raw)["attempts"] if raw else []
    used = []
    for attempt in made:
        when = _when(attempt.get("requested_at"))
        if attempt.get("of") != run_id or when is None:
            continue
        used.append(
            UsedAction(
                str(attempt["action"]),
                str(attempt["requested_by"]),
                when,
                f"attempt {attempt['run_id']}",
            )
        )
    return used


def _record(store: ObjectStore, key: str) -> StageRecord | None:
    data = store.read(key)
    return StageRecord.from_json(data) if data is not None else None


def commands_carried_out(store: ObjectStore, run_id: str) -> list[UsedAction]:
    """Every command on this run whose consumer recorded it done (not retry/rerun: those are
    the attempts), oldest first."""
    used = []
    for key in sorted(store.list(f"{keys.COMMANDS}{run_id}/")):
        if not key.endswith(DONE):
            continue
        action = key.rsplit("/", 1)[1].removesuffix(DONE).rsplit("-", 1)[0]
        if action in ATTEMPT_ACTIONS or action in MODEL_ACTIONS:
            continue
        done = _record(store, key)
        if done is None or done.state != "done":
            continue
        result = done.result or {}
        asked = _record(store, key.removesuffix(DONE) + ".json")
        said = (asked.result or {}) if asked is not None else {}
        by = result.get("requested_by") or said.get("requested_by")
        when = (
            _when(result.get("requested_at"))
            or _when(said.get("requested_at"))
            or _when(asked.finished_at if asked is not None else None)
            or _when(done.finished_at)
        )
        if isinstance(by, str) and when is not None:
            used.append(UsedAction(action, by, when))
    return sorted(used, key=lambda u: u.requested_at)


def from_event_details(details: dict[str, Any]) -> UsedAction | None:
    """`details.command` of a final event a command caused (who, when, from where)."""
    command = details.get("command")
    if not isinstance(command, dict):
        return None
    when = _when(command.get("requested_at"))
    action, by = command.get("action"), command.get("requested_by")
    if not isinstance(action, str) or not isinstance(by, str) or when is None:
        return None
    return UsedAction(action, by, when)


def backfill_made(records: dict[str, StageRecord]) -> UsedAction | None:
    """A run the trigger accepted as a backfill: its slot's Backfill button is used (whoever
    asked: the button, `mlrelay backfill`)."""
    trigger = records.get("trigger")
    result = (trigger.result or {}) if trigger is not None and trigger.state == "done" else {}
    when = _when(result.get("accepted_at"))
    if result.get("trigger") != "backfill" or when is None:
        return None
    return UsedAction("backfill", str(result.get("requested_by") or "unknown"), when)


def used_actions(
    store: ObjectStore,
    run_id: str,
    records: dict[str, StageRecord],
    details: dict[str, Any] | None = None,
) -> tuple[UsedAction, ...]:
    """What the card shows as used: one line per command carried out on this run."""
    used = attempts_made(store, run_id, records) + commands_carried_out(store, run_id)
    for extra in (from_event_details(details or {}), backfill_made(records)):
        if extra is not None and extra.action not in {u.action for u in used}:
            used.append(extra)
    return tuple(used)
