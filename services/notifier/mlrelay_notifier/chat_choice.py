"""Where notifications go: Slack by bot token (one message per run, updated in place), Slack
incoming webhooks (one message per post), or the console when neither is configured."""

from __future__ import annotations

import math
import sys
from typing import Any, TextIO

from mlrelay.ports.container import Ports
from mlrelay_notifier.chat import Chat, ChatRetries, LineChat, Posted
from mlrelay_notifier.errors import ChatRefused
from mlrelay_notifier.render import ChatMessage
from mlrelay_notifier.slack_clients import SlackBotChat, SlackWebhookChat


class ConsoleChat:
    name = "console"
    plain_text = True  # a terminal shows no Slack emoji codes or blocks

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream  # None: whatever sys.stdout is at the time of posting
        self.sent: list[str] = []

    def post(self, text: str, blocks: list[dict[str, Any]] | None = None) -> None:
        print(text, file=self.stream or sys.stdout, flush=True)
        self.sent.append(text)


class PlainChat:
    """A `LineChat` (console, or a test's recorder) seen as a `Chat` without threads."""

    threads = False

    def __init__(self, lines: LineChat) -> None:
        self.lines = lines
        self.name = lines.name

    def send(
        self,
        message: ChatMessage,
        *,
        route: str | None,
        thread_ts: str | None = None,
        broadcast: bool = False,
        key: str | None = None,
        look_first: bool = False,
    ) -> Posted:
        if getattr(self.lines, "plain_text", False):
            self.lines.post(message.console_text or message.text, None)
        else:
            self.lines.post(message.text, message.blocks + message.attachments or None)
        return Posted(route or self.name, None)

    def update(self, message: ChatMessage, *, channel: str, ts: str) -> None:
        raise ChatRefused("chat", "this chat cannot update messages", "only bot-token Slack can")


def as_chat(component: Any) -> Chat:
    if hasattr(component, "send") and hasattr(component, "threads"):
        return component  # type: ignore[no-any-return]
    return PlainChat(component)


def build_chat(ports: Ports) -> Chat:
    """Bot token if set (one message per run), else webhooks, else the console."""
    chat = ports.settings.chat
    retries = ChatRetries(
        min_interval=chat.min_interval_seconds,
        timeout=max(1, math.ceil(ports.settings.http_timeout_seconds)),  # slack_sdk takes int
    )
    if chat.bot_token:
        return SlackBotChat(
            chat.bot_token.value,
            default_channel=chat.default_channel,
            api_url=chat.api_url,
            retries=retries,
        )
    webhooks: dict[str | None, str] = {name: s.value for name, s in chat.webhooks.items()}
    if chat.webhook_url:
        webhooks[None] = chat.webhook_url.value
    if webhooks:
        return SlackWebhookChat(webhooks, retries)
    return PlainChat(ConsoleChat())
