"""Where notifications go: a Slack incoming webhook, or the console when none is configured."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from mlrelay.errors import PermanentError, TransientError
from mlrelay.ports import ChatChannel
from mlrelay.wiring import Ports


class ConsoleChannel:
    name = "console"
    plain_text = True  # a terminal shows no Slack emoji codes or blocks

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream  # None: whatever sys.stdout is at the time of posting
        self.sent: list[str] = []

    def post(self, text: str, blocks: list[dict[str, Any]] | None = None) -> None:
        print(text, file=self.stream or sys.stdout, flush=True)
        self.sent.append(text)


class SlackWebhookChannel:
    """slack_sdk's WebhookClient, retrying 429 (Retry-After) and 5xx. The URL is a secret: it is
    never put in a log line or an error message."""

    name = "slack-webhook"
    plain_text = False

    def __init__(self, url: str, timeout: int = 10) -> None:
        from slack_sdk.http_retry.builtin_handlers import (
            ConnectionErrorRetryHandler,
            RateLimitErrorRetryHandler,
            ServerErrorRetryHandler,
        )
        from slack_sdk.webhook import WebhookClient

        self._client = WebhookClient(
            url,
            timeout=timeout,
            retry_handlers=[
                ConnectionErrorRetryHandler(max_retry_count=2),
                RateLimitErrorRetryHandler(max_retry_count=3),
                ServerErrorRetryHandler(max_retry_count=2),
            ],
        )

    def post(self, text: str, blocks: list[dict[str, Any]] | None = None) -> None:
        try:
            response = self._client.send(text=text, blocks=blocks)
        except OSError as exc:  # connection refused / reset / timeout, after retries
            raise TransientError(f"Slack webhook unreachable: {type(exc).__name__}") from None
        if response.status_code == 200:
            return
        if response.status_code == 429 or response.status_code >= 500:
            raise TransientError(f"Slack webhook answered {response.status_code}")
        raise PermanentError(
            "SLACK_WEBHOOK_URL",
            f"Slack refused the message: {response.status_code} {response.body[:200]}",
            "check the webhook is still installed and the blocks are valid",
        )


def build_channel(ports: Ports) -> ChatChannel:
    secret = ports.settings.slack_webhook_url
    if secret:
        return SlackWebhookChannel(secret.value)
    return ConsoleChannel()
