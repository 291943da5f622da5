"""The run card's buttons (bot mode) and, once a button is used, the line that replaces it.

What the card offers follows the run's state:

| state | buttons |
|---|---|
| failed, succeeded with regression, cancelled | Retry, Rerun on the same snapshot (if any) |
| submitted (the pipeline running) | Cancel (with a confirmation) |
| held (`pipeline.held`, the approval gate) | Approve, Reject (with a confirmation) |
| missed (`schedule.missed`) | Backfill (its value: the slot's run id, `details.run_id`) |
| its model a canary (the run's PromotionRecord) | Promote to 100 %, Roll back (both confirmed) |

Each button's `action_id` is `mlrelay_<action>` and its `value` the run id: what the door parses
(services/interactions/mlrelay_interactions/slack_requests.py). A button whose command was
carried out (mlrelay_notifier.used_actions) is not offered again; a context line says who used it
and when instead ("retried by @user at ..."); Promote and Roll back go once the model is no longer
a canary, and the model section says who moved it (mlrelay_notifier.model_section). Buttons are
offered only where the pipeline's `actions` allowlist names someone: with an empty one every
click would be refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from typing import TYPE_CHECKING

from mlrelay_notifier.run_view import RunView
from mlrelay_notifier.used_actions import UsedAction

if TYPE_CHECKING:
    from slack_sdk.models.blocks import Block

# Slack's Block Kit limits: button text <= 75 chars, value <= 2000, <= 25 elements per block
MAX_BUTTON_TEXT = 75
MAX_VALUE = 2000
MAX_ELEMENTS = 25
MAX_CONTEXT_ELEMENTS = 10

LABELS = {
    "retry": "Retry",
    "rerun": "Rerun on the same snapshot",
    "cancel": "Cancel",
    "approve": "Approve",
    "reject": "Reject",
    "backfill": "Backfill",
    "promote": "Promote to 100 %",
    "rollback": "Roll back",
}
DONE_AS = {
    "retry": "retried",
    "rerun": "rerun on the same snapshot",
    "cancel": "cancelled",
    "approve": "approved",
    "reject": "rejected",
    "backfill": "backfilled",
    "promote": "promoted",
    "rollback": "rolled back",
}
DONE_EMOJI = {
    "retry": ":repeat:",
    "rerun": ":repeat:",
    "cancel": ":no_entry_sign:",
    "approve": ":white_check_mark:",
    "reject": ":no_entry:",
    "backfill": ":calendar:",
    "promote": ":trophy:",
    "rollback": ":rewind:",
}
STYLE = {
    "retry": "primary",
    "approve": "primary",
    "backfill": "primary",
    "promote": "primary",
    "cancel": "danger",
    "rollback": "danger",
}
RETRYABLE = ("failed", "succeeded_with_regression", "cancelled")
# the buttons that, once any of them is used, all go: they answer the same question
SAME_QUESTION = {
    "retry": ("retry", "rerun"),
    "rerun": ("retry", "rerun"),
    "approve": ("approve", "reject"),
    "reject": ("approve", "reject"),
    "promote": ("promote", "rollback"),
    "rollback": ("promote", "rollback"),
}
PROMOTION_ACTIONS = ("promote", "rollback")


@dataclass(frozen=True)
class Confirm:
    title: str
    text: str
    confirm: str


CONFIRM = {
    "cancel": Confirm("Cancel this run?", "The pipeline job is stopped.", "Cancel the run"),
    "reject": Confirm("Reject this run?", "The run ends here; nothing is deployed.", "Reject"),
    "promote": Confirm(
        "Promote to 100 %?",
        "The challenger serves all of the endpoint's traffic; the champion's share goes to it.",
        "Promote",
    ),
    "rollback": Confirm(
        "Roll back?",
        "The previous traffic split is restored exactly and the challenger is undeployed.",
        "Roll back",
    ),
}


def actions_for(view: RunView) -> list[str]:
    """The actions the run's state allows, before taking out the ones already used; a model
    serving as a canary adds Promote to 100 % and Roll back (whatever the run's own status)."""
    promotion = list(PROMOTION_ACTIONS) if view.model is not None and view.model.open else []
    if view.status in RETRYABLE:
        return (["retry", "rerun"] if view.snapshot is not None else ["retry"]) + promotion
    return {
        "submitted": ["cancel"],
        "held": ["approve", "reject"],
        "missed": ["backfill"],
    }.get(view.status, []) + promotion


def offered(view: RunView) -> list[str]:
    """The buttons the card shows: the state's, less those answered by a used one."""
    done = {u.action for u in view.used}
    gone = {a for used in done for a in SAME_QUESTION.get(used, (used,))}
    return [a for a in actions_for(view) if a not in gone]


def button_value(view: RunView, action: str) -> str:
    """The run the button acts on: the missed slot's run id for Backfill, else the card's run."""
    if action == "backfill":
        slot_run = view.details.get("run_id")
        if isinstance(slot_run, str) and slot_run:
            return slot_run[:MAX_VALUE]
    return view.run_id[:MAX_VALUE]


def who(requested_by: str) -> str:
    """`slack:U123` -> a Slack mention; anything else (the CLI's user, the watchdog) as text."""
    from mlrelay_notifier.render import escape

    if requested_by.startswith("slack:"):
        return f"<@{escape(requested_by.removeprefix('slack:'))}>"
    return escape(requested_by)


def used_line(used: UsedAction) -> str:
    """e.g. ":repeat: retried by <@U123> at 2026-03-01 09:30:00 UTC → attempt run-r2"."""
    from mlrelay_notifier.render import escape

    done = DONE_AS.get(used.action, used.action)
    when = used.requested_at.astimezone(UTC)
    line = f"{DONE_EMOJI.get(used.action, ':ballot_box_with_check:')} {done} by "
    line += f"{who(used.requested_by)} at {when:%Y-%m-%d %H:%M:%S} UTC"
    if used.outcome:
        line += f" → {escape(used.outcome)}"
    return line


def action_blocks(view: RunView) -> list[Block]:
    """The context line of the used buttons and the actions block of the others (Block Kit
    JSON, checked by slack_sdk's models); no buttons when the card is not interactive."""
    from slack_sdk.models.blocks import (
        ActionsBlock,
        ButtonElement,
        ConfirmObject,
        ContextBlock,
        MarkdownTextObject,
    )

    blocks: list[Block] = []
    if view.used:
        lines = [used_line(u)[:3000] for u in view.used][-MAX_CONTEXT_ELEMENTS:]
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=line) for line in lines]))
    buttons = []
    for action in offered(view)[:MAX_ELEMENTS] if view.interactive else []:
        asked = CONFIRM.get(action)
        buttons.append(
            ButtonElement(
                text=LABELS[action][:MAX_BUTTON_TEXT],
                action_id=f"mlrelay_{action}",
                value=button_value(view, action),
                style=STYLE.get(action),
                confirm=(
                    ConfirmObject(
                        title=asked.title, text=asked.text, confirm=asked.confirm, deny="Keep it"
                    )
                    if asked is not None
                    else None
                ),
            )
        )
    if buttons:
        blocks.append(ActionsBlock(block_id="mlrelay_actions", elements=buttons))
    return blocks
