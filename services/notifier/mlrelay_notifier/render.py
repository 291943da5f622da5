"""What a person reads: one line of text (and a Block Kit section) per lifecycle event."""

from __future__ import annotations

from typing import Any

from mlrelay.contracts import LifecycleEvent

EMOJI = {
    "accepted": ":inbox_tray:",
    "started": ":hourglass_flowing_sand:",
    "completed": ":package:",
    "submitted": ":rocket:",
    "succeeded": ":white_check_mark:",
    "failed": ":x:",
    "rejected": ":no_entry:",
    "dead_lettered": ":rotating_light:",
}
CONSOLE_MARK = {
    "accepted": "[accepted]",
    "started": "[started]",
    "completed": "[done]",
    "submitted": "[submitted]",
    "succeeded": "[ok]",
    "failed": "[FAILED]",
    "rejected": "[REJECTED]",
    "dead_lettered": "[DEAD-LETTER]",
}


def _figures(event: LifecycleEvent) -> str:
    parts = []
    for key, value in event.figures.items():
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        parts.append(f"{key}={shown}")
    return " ".join(parts)


def render_text(event: LifecycleEvent, *, console: bool = False) -> str:
    mark = CONSOLE_MARK[event.status] if console else EMOJI[event.status]
    who = event.pipeline or "unknown pipeline"
    text = f"{mark} {who} · {event.event_type} · run {event.run_id}"
    if event.summary:
        text += f" — {event.summary}"
    if event.figures:
        text += f" ({_figures(event)})"
    if event.error:
        text += f"\n    error: {event.error[:500]}"
    return text


def render_blocks(event: LifecycleEvent) -> list[dict[str, Any]]:
    from slack_sdk.models.blocks import ContextBlock, MarkdownTextObject, SectionBlock

    lines = [f"{EMOJI[event.status]} *{event.pipeline or 'unknown pipeline'}* — {event.summary}"]
    if event.figures:
        lines.append(f"`{_figures(event)}`")
    if event.error:
        lines.append(f"```{event.error[:2000]}```")
    blocks: list[Any] = [SectionBlock(text=MarkdownTextObject(text="\n".join(lines)))]
    context = [f"run `{event.run_id}`", f"`{event.event_type}`"]
    context += [f"<{url}|{name}>" for name, url in event.links.items() if url.startswith("http")]
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=" · ".join(context))]))
    return [block.to_dict() for block in blocks]
