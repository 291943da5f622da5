"""Where notifications go: Slack by bot token (one message per run, updated in place), Slack
incoming webhooks (one message per post), or the console when neither is configured."""

from __future__ import annotations

import math
import sys
from typing import Any, TextIO

from mlrelay.ports.container import Ports
from mlrelay_notifier.poster import (
    Delivery,
    DeliveryFailed,
    DeliveryRefused,
    Posted,
    Poster,
    SimpleChannel,
)
from mlrelay_notifier.render import ChatMessage
from mlrelay_notifier.slack_clients import SlackBotChannel, SlackWebhookChannel

__all__ = [
    "ConsoleChannel",
    "Delivery",
    "DeliveryFailed",
    "DeliveryRefused",
    "PlainPoster",
    "Posted",
    "Poster",
    "SlackBotChannel",
    "SlackWebhookChannel",
    "as_poster",
    "build_channel",
]


class ConsoleChannel:
    name = "console"
    plain_text = True  # a terminal shows no Slack emoji codes or blocks

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream  # None: whatever sys.stdout is at the time of posting
        self.sent: list[str] = []

    def post(self, text: str, blocks: list[dict[str, Any]] | None = None) -> None:
        print(text, file=self.stream or sys.stdout, flush=True)
        self.sent.append(text)


class PlainPoster:
    """A `SimpleChannel` (console, or a test's recorder) seen as a `Poster` without threads."""

    threads = False

    def __init__(self, channel: SimpleChannel) -> None:
        self.channel = channel
        self.name = channel.name

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
        if getattr(self.channel, "plain_text", False):
            self.channel.post(message.console_text or message.text, None)
        else:
            self.channel.post(message.text, message.blocks + message.attachments or None)
        return Posted(route or self.name, None)

    def update(self, message: ChatMessage, *, channel: str, ts: str) -> None:
        raise DeliveryRefused(
            "chat", "this channel cannot update messages", "only bot-token Slack can"
        )


def as_poster(component: Any) -> Poster:
    if hasattr(component, "send") and hasattr(component, "threads"):
        return component  # type: ignore[no-any-return]
    return PlainPoster(component)


def build_channel(ports: Ports) -> Poster:
    """Bot token if set (one message per run), else webhooks, else the console."""
    chat = ports.settings.chat
    delivery = Delivery(
        min_interval=chat.min_interval_seconds,
        timeout=max(1, math.ceil(ports.settings.http_timeout_seconds)),  # slack_sdk takes int
    )
    if chat.bot_token:
        return SlackBotChannel(
            chat.bot_token.value,
            default_channel=chat.default_channel,
            api_url=chat.api_url,
            delivery=delivery,
        )
    webhooks: dict[str | None, str] = {name: s.value for name, s in chat.webhooks.items()}
    if chat.webhook_url:
        webhooks[None] = chat.webhook_url.value
    if webhooks:
        return SlackWebhookChannel(webhooks, delivery)
    return PlainPoster(ConsoleChannel())
