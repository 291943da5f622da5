"""What a person reads: a run's Block Kit card, a one-line update, and a plain-text fallback.

The card (header + facts, then a coloured attachment with parameters, snapshot, error and
links) is built with `slack_sdk.models.blocks`, whose `to_dict()` checks Slack's limits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlrelay.comparison import describe_comparison
from mlrelay.contracts import LifecycleEvent
from mlrelay_notifier.card_actions import action_blocks
from mlrelay_notifier.model_section import model_lines
from mlrelay_notifier.run_view import RunView

EMOJI = {
    "accepted": ":inbox_tray:",
    "started": ":hourglass_flowing_sand:",
    "completed": ":package:",
    "held": ":raised_hand:",
    "submitted": ":rocket:",
    "succeeded": ":white_check_mark:",
    "succeeded_with_regression": ":warning:",
    "failed": ":x:",
    "cancelled": ":no_entry_sign:",
    "rejected": ":no_entry:",
    "dead_lettered": ":rotating_light:",
    "retried": ":repeat:",
    "stuck": ":hourglass:",
    "deadline_missed": ":alarm_clock:",
    "missed": ":calendar:",
    # promotion events (a webhook's or the console's line; the card keeps the run's status)
    "canary": ":hatching_chick:",
    "promoted": ":trophy:",
    "rolled_back": ":rewind:",
}
CONSOLE_MARK = {
    "accepted": "[accepted]",
    "started": "[started]",
    "completed": "[done]",
    "held": "[HELD]",
    "submitted": "[submitted]",
    "succeeded": "[ok]",
    "succeeded_with_regression": "[REGRESSION]",
    "failed": "[FAILED]",
    "cancelled": "[cancelled]",
    "rejected": "[REJECTED]",
    "dead_lettered": "[DEAD-LETTER]",
    "retried": "[retried]",
    "stuck": "[STUCK]",
    "deadline_missed": "[LATE]",
    "missed": "[MISSED]",
    "canary": "[canary]",
    "promoted": "[promoted]",
    "rolled_back": "[rolled back]",
}
STATE_WORDS = {
    "accepted": "accepted",
    "started": "taking the snapshot",
    "completed": "snapshot ready",
    "held": "waiting for approval",
    "submitted": "pipeline running",
    "succeeded": "succeeded",
    "succeeded_with_regression": "succeeded with regression",
    "failed": "failed",
    "cancelled": "cancelled",
    "rejected": "message rejected",
    "dead_lettered": "message dead-lettered",
    "retried": "retried",
    "stuck": "stuck",
    "deadline_missed": "deadline missed",
    "missed": "schedule slot missed",
    "canary": "model serving as a canary",
    "promoted": "model promoted",
    "rolled_back": "model rolled back",
}
COLOUR = {
    "succeeded": "#2EB67D",  # green
    "failed": "#E01E5A",  # red
    "cancelled": "#616061",  # grey: stopped by a person, not broken
    "succeeded_with_regression": "#ECB22E",  # amber
    "rejected": "#ECB22E",  # amber
    "held": "#ECB22E",  # amber: waiting for a person
    "dead_lettered": "#E01E5A",
    "stuck": "#ECB22E",  # amber: still going, but not as it should
    "deadline_missed": "#ECB22E",
    "missed": "#E01E5A",  # a run that should exist does not
}
IN_PROGRESS_COLOUR = "#1D9BD1"  # blue
RANK_FINAL = ("succeeded", "failed", "cancelled", "succeeded_with_regression")
ERROR_EXCERPT_CHARS = 1500
MAX_LINK_BUTTONS = 5


@dataclass(frozen=True)
class ChatMessage:
    """One Slack message: `text` is the notification / plain-text fallback."""

    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[dict[str, Any]] = field(default_factory=list)
    console_text: str = ""  # for a terminal: no emoji codes

    def payload(self) -> dict[str, Any]:
        """The message as Slack's API and the Block Kit Builder take it."""
        body: dict[str, Any] = {"text": self.text}
        if self.blocks:
            body["blocks"] = self.blocks
        if self.attachments:
            body["attachments"] = self.attachments
        return body

    def plain(self) -> ChatMessage:
        """Text only: what is left to send when Slack refuses the blocks."""
        return ChatMessage(self.text, console_text=self.console_text)


def escape(text: str) -> str:
    """Slack mrkdwn control characters in user content."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _shown(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _figures(figures: dict[str, Any]) -> str:
    return " ".join(f"{key}={_shown(value)}" for key, value in figures.items())


def human_bytes(size: int) -> str:
    amount = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if amount < 1000 or unit == "TB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1000
    return f"{size} B"


def human_duration(seconds: float) -> str:
    whole = round(seconds)
    if whole < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def error_excerpt(error: str, limit: int = ERROR_EXCERPT_CHARS) -> str:
    """The end of the error (a traceback's last lines say the most), safe inside ``` fences."""
    text = error.strip().replace("```", "'''")
    if len(text) > limit:
        text = "…" + text[-limit:]
    return text


def render_text(event: LifecycleEvent | RunView, *, console: bool = False) -> str:
    """One line (and the error) for a terminal or a notification."""
    mark = CONSOLE_MARK[event.status] if console else EMOJI[event.status]
    who = event.pipeline or "unknown pipeline"
    text = f"{mark} {who} · {event.event_type} · run {event.run_id}"
    if event.summary:
        text += f" — {event.summary}"
    figures = event.figures if isinstance(event, LifecycleEvent) else event.metrics
    if figures:
        text += f" ({_figures(figures)})"
    if event.error and not (isinstance(event, RunView) and event.model is not None):
        text += f"\n    error: {event.error[:500]}"  # else the model's line says it
    if isinstance(event, RunView):
        text += "".join(f"\n    {line}" for line in verdict_lines(event, console=console))
        if event.model is not None:
            text += "".join(f"\n    {line}" for line in model_lines(event.model, console=console))
    return text


def verdict_lines(view: RunView, *, console: bool = False) -> list[str]:
    """Missed gates, the snapshot's quality warnings and the deltas against the last good run."""
    warn = "warning:" if console else ":warning:"
    lines = [f"{'gate missed:' if console else ':no_entry_sign:'} {r}" for r in view.regressions]
    lines += [f"{warn} {w}" for w in view.quality_warnings]
    if view.comparison is not None:
        baseline = view.comparison.baseline_run_id
        head = f"vs last good run {baseline}:" if baseline else "vs last good run:"
        lines.append(f"{head} " + "; ".join(describe_comparison(view.comparison)))
    return lines


def comparison_section(view: RunView) -> str | None:
    """The card's "vs last good run" section (mrkdwn), or None before the run is final."""
    if view.comparison is None:
        return None
    baseline = view.comparison.baseline_run_id
    head = f"*vs last good run* `{escape(baseline)}`" if baseline else "*vs last good run*"
    body = "\n".join(f"• {escape(line)}" for line in describe_comparison(view.comparison))
    return f"{head}\n{body}"


def trigger_line(view: RunView) -> str:
    kind = view.trigger or "unknown"
    if kind == "schedule":
        line = f"schedule slot {view.logical_time or '?'}"
    elif kind == "backfill":
        line = f"backfill of {view.logical_time or '?'}"
    else:
        line = "manual"
    if view.requested_by:
        line += f" by {view.requested_by}"
    return line


def _link_parts(view: RunView) -> tuple[list[tuple[str, str]], list[str]]:
    """(clickable links, other locations shown as text)."""
    labels = {"snapshot": "Snapshot", "logs": "Logs", "log": "Pipeline log"}
    buttons, others = [], []
    for name, target in view.links.items():
        label = labels.get(name, name.replace("_", " ").capitalize())
        if target.startswith(("https://", "http://")):
            buttons.append((label, target))
        else:
            others.append(f"{label}: `{escape(target)}`")
    return buttons[:MAX_LINK_BUTTONS], others + [f"{lbl}: {url}" for lbl, url in buttons[5:]]


def _facts(view: RunView) -> list[str]:
    facts = [f"*Run*\n`{view.run_id}`", f"*Status*\n{EMOJI[view.status]} {view.status}"]
    if view.trigger:
        facts.append(f"*Triggered by*\n{escape(trigger_line(view))}")
    if view.duration_seconds is not None and view.status in STATE_WORDS:
        label = "Duration" if view.status in RANK_FINAL else "Elapsed"
        facts.append(f"*{label}*\n{human_duration(view.duration_seconds)}")
    if view.snapshot is not None:
        snap = view.snapshot
        facts.append(f"*Snapshot*\n{snap.rows:,} rows · {human_bytes(snap.bytes)}")
    if view.status == "failed":
        where = view.stage + (f" / `{escape(view.failed_task)}`" if view.failed_task else "")
        facts.append(f"*Failed at*\n{where}")
    if view.late_by_seconds is not None and view.status in RANK_FINAL:
        facts.append(f"*Deadline*\nmissed, finished {late_words(view.late_by_seconds)}")
    if view.status == "missed":  # `schedule.missed`: the slot, and the run it should have made
        for key in ("schedule", "slot"):
            if view.details.get(key):
                facts.append(f"*{key.capitalize()}*\n`{escape(str(view.details[key]))}`")
    for key in ("field", "subscription", "kept_at"):
        if view.details.get(key):
            facts.append(f"*{key.replace('_', ' ').capitalize()}*\n`{view.details[key]}`")
    return facts[:10]


def approval_section(view: RunView) -> str | None:
    """A held run's card: what the approver is asked to let through (the snapshot's figures and
    quality results, from `pipeline.held`) and until when; a rejection: who or why."""
    if view.status == "rejected" and view.stage == "pipeline":
        command = view.details.get("command") or {}
        if view.details.get("reason") == "approval_timeout":
            return "*Approval* timed out: nobody approved the run in time"
        if command:
            who = escape(str(command.get("requested_by", "?")))
            return f"*Approval* rejected by {who} at {escape(str(command.get('requested_at')))}"
        return None
    if view.status != "held":
        return None
    snap = view.details.get("snapshot") or {}
    lines = [
        f"*Waiting for approval* until {escape(str(view.details.get('timeout_at', '?')))}",
        f"• {int(snap.get('rows', 0)):,} rows · {human_bytes(int(snap.get('bytes', 0)))} · "
        f"{snap.get('files', 0)} files",
        f"• fingerprint `{escape(str(snap.get('fingerprint', '?'))[:16])}`",
    ]
    for result in snap.get("quality") or []:
        mark = ":white_check_mark:" if result.get("passed", True) else ":warning:"
        name = escape(str(result.get("name", "expectation")))
        said = escape(str(result.get("message") or ""))
        lines.append(f"{mark} {name}" + (f": {said}" if said else ""))
    return "\n".join(lines)


def late_words(seconds: float) -> str:
    """How late, to the minute: "40 min late", "2 h 5 min late"."""
    minutes = max(1, round(seconds / 60))
    if minutes < 60:
        return f"{minutes} min late"
    return f"{minutes // 60} h {minutes % 60} min late"


def state_words(view: RunView) -> str:
    """What the run is in, with how late a final state came after a missed deadline."""
    words = STATE_WORDS[view.status]
    if view.late_by_seconds is not None and view.status in RANK_FINAL:
        words += f", {late_words(view.late_by_seconds)}"
    return words


def render_card(view: RunView) -> ChatMessage:
    """The run's message: what it is, where it stands, and everything needed to act on it."""
    from slack_sdk.models.attachments import BlockAttachment
    from slack_sdk.models.blocks import (
        ActionsBlock,
        Block,
        ButtonElement,
        ContextBlock,
        HeaderBlock,
        MarkdownTextObject,
        SectionBlock,
    )

    pipeline = view.pipeline or "unknown pipeline"
    words = state_words(view)
    if view.status == "rejected" and view.stage == "pipeline":  # a held run, not a message
        words = "rejected before deploy"
    header = f"{EMOJI[view.status]} {pipeline}: {words}"
    top: list[Block] = [
        HeaderBlock(text=header[:150]),
        SectionBlock(fields=[MarkdownTextObject(text=f) for f in _facts(view)]),
    ]
    if view.model is not None:  # the run's model on its endpoint, above its buttons
        shown = "\n".join(model_lines(view.model))
        top.append(
            SectionBlock(block_id="mlrelay_model", text=MarkdownTextObject(text=shown[:3000]))
        )
    top += action_blocks(view)  # who used which button, and the buttons still to use
    details: list[Block] = []
    if view.summary:
        details.append(SectionBlock(text=MarkdownTextObject(text=escape(view.summary)[:3000])))
    if view.parameters:
        shown = " ".join(f"`{escape(k)}={escape(_shown(v))}`" for k, v in view.parameters.items())
        details.append(SectionBlock(text=MarkdownTextObject(text=f"*Parameters* {shown}"[:3000])))
    if view.metrics:
        shown = " ".join(f"`{escape(k)}={escape(_shown(v))}`" for k, v in view.metrics.items())
        details.append(SectionBlock(text=MarkdownTextObject(text=f"*Metrics* {shown}"[:3000])))
    if view.regressions:
        missed = "\n".join(f"• {escape(r)}" for r in view.regressions)
        details.append(
            SectionBlock(text=MarkdownTextObject(text=f"*Gates missed*\n{missed}"[:3000]))
        )
    if view.quality_warnings:
        shown_w = "\n".join(f":warning: {escape(w)}" for w in view.quality_warnings)
        details.append(
            SectionBlock(text=MarkdownTextObject(text=f"*Data warnings*\n{shown_w}"[:3000]))
        )
    approval = approval_section(view)
    if approval:
        details.append(SectionBlock(text=MarkdownTextObject(text=approval[:3000])))
    compared = comparison_section(view)
    if compared:
        details.append(SectionBlock(text=MarkdownTextObject(text=compared[:3000])))
    if view.error:
        details.append(
            SectionBlock(
                text=MarkdownTextObject(text=f"*Error*\n```{escape(error_excerpt(view.error))}```")
            )
        )
    buttons, others = _link_parts(view)
    if buttons:
        details.append(
            ActionsBlock(
                elements=[
                    ButtonElement(text=label, url=url, action_id=f"link-{i}")
                    for i, (label, url) in enumerate(buttons)
                ]
            )
        )
    context = [*others, f"updated {view.occurred_at:%Y-%m-%d %H:%M:%S} UTC · mlrelay"]
    details.append(ContextBlock(elements=[MarkdownTextObject(text=" · ".join(context)[:3000])]))
    colour = COLOUR.get(view.status, IN_PROGRESS_COLOUR)
    attachment = BlockAttachment(blocks=details, color=colour)
    return ChatMessage(
        text=render_text(view),
        blocks=[block.to_dict() for block in top],
        attachments=[attachment.to_dict()],
        console_text=render_text(view, console=True),
    )


def render_update(view: RunView) -> ChatMessage:
    """A status change in one line (a thread reply, or a webhook's progress message)."""
    from slack_sdk.models.blocks import ContextBlock, MarkdownTextObject, SectionBlock

    line = f"{EMOJI[view.status]} *{escape(view.pipeline or 'unknown pipeline')}* — "
    line += escape(view.summary or STATE_WORDS[view.status])
    if view.metrics:
        line += f"  `{escape(_figures(view.metrics))}`"
    for warning in view.quality_warnings:  # e.g. snapshot.completed with `severity: warn` misses
        line += f"\n:warning: {escape(warning)}"
    if view.model is not None:  # a promotion event: the model's lines (its error among them)
        line += "".join(f"\n{shown}" for shown in model_lines(view.model))
    elif view.error:
        line += f"\n```{escape(error_excerpt(view.error, 800))}```"
    blocks = [
        SectionBlock(text=MarkdownTextObject(text=line[:3000])),
        ContextBlock(
            elements=[MarkdownTextObject(text=f"run `{view.run_id}` · `{view.event_type}`")]
        ),
    ]
    return ChatMessage(
        text=render_text(view),
        blocks=[b.to_dict() for b in blocks],
        console_text=render_text(view, console=True),
    )
