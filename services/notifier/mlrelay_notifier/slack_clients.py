"""Slack through the real `slack_sdk` clients: bot token (post, update in place, thread) or
incoming webhooks (one message per post).

Every call has retry handlers for connection errors, 429 (`Retry-After`) and 500/503
(exponential backoff), paced per channel. The token and webhook URLs are secrets: redacted from
slack_sdk's log lines and never put into an error message. A send that still fails raises
`DeliveryFailed` (transient: Pub/Sub redelivers, then dead-letters) or `DeliveryRefused` (Slack
said no for good).
"""

from __future__ import annotations

import json
from typing import Any

from mlrelay_notifier.pacing import ChannelPacer, PacedServerErrorRetryHandler, RetryAfterHandler
from mlrelay_notifier.poster import Delivery, DeliveryFailed, DeliveryRefused, Posted
from mlrelay_notifier.redaction import redact, sdk_logger
from mlrelay_notifier.render import ChatMessage

# Slack Web API errors worth another try later (everything else is a refusal)
RETRYABLE_API_ERRORS = {
    "ratelimited",
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
}


def _retry_handlers(pacer: ChannelPacer, channel_of: Any, delivery: Delivery) -> list[Any]:
    from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler

    return [
        ConnectionErrorRetryHandler(max_retry_count=delivery.connection_retries),
        RetryAfterHandler(
            pacer,
            channel_of,
            max_retry_count=delivery.rate_limit_retries,
            max_wait=delivery.max_retry_after,
        ),
        PacedServerErrorRetryHandler(
            pacer,
            channel_of,
            max_retry_count=delivery.server_error_retries,
            backoff_factor=delivery.backoff_factor,
        ),
    ]


class SlackWebhookChannel:
    """Incoming webhooks: route None = the default webhook, NAME = SLACK_WEBHOOK_URL_<NAME>."""

    threads = False
    name = "slack-webhook"

    def __init__(
        self,
        webhooks: dict[str | None, str],
        delivery: Delivery | None = None,
        pacer: ChannelPacer | None = None,
    ) -> None:
        self.delivery = delivery or Delivery()
        self.pacer = pacer or ChannelPacer(self.delivery.min_interval)
        self._urls = {route: url for route, url in webhooks.items() if url}
        self._secrets = list(self._urls.values())
        self._clients: dict[str | None, Any] = {}

    def _client(self, route: str | None) -> Any:
        if route not in self._urls:
            named = f"SLACK_WEBHOOK_URL_{route.upper()}" if route else "SLACK_WEBHOOK_URL"
            raise DeliveryRefused(
                "notify.slack_webhook",
                f"no webhook {route or '(default)'} is configured",
                f"set {named} (from Secret Manager in the cloud)",
                code="webhook_not_configured",
            )
        if route not in self._clients:
            from slack_sdk.webhook import WebhookClient

            key = self._key(route)
            self._clients[route] = WebhookClient(
                self._urls[route],
                timeout=self.delivery.timeout,
                logger=sdk_logger("webhook", self._secrets),
                retry_handlers=_retry_handlers(self.pacer, lambda _r: key, self.delivery),
            )
        return self._clients[route]

    @staticmethod
    def _key(route: str | None) -> str:
        return f"webhook:{route or 'default'}"

    def send(
        self,
        message: ChatMessage,
        *,
        route: str | None,
        thread_ts: str | None = None,
        broadcast: bool = False,
    ) -> Posted:
        client = self._client(route)
        try:
            with self.pacer.turn(self._key(route)):
                response = client.send(
                    text=message.text,
                    blocks=message.blocks or None,
                    attachments=message.attachments or None,
                    unfurl_links=False,
                    unfurl_media=False,
                )
        except OSError as exc:  # connection refused / reset / timeout, after retries
            raise DeliveryFailed(f"Slack webhook unreachable: {type(exc).__name__}") from None
        status = int(response.status_code)
        if status == 200:
            return Posted(route or "default", None)
        body = redact(str(response.body or "")[:200], self._secrets)
        if status == 429 or status >= 500:
            raise DeliveryFailed(f"Slack webhook answered {status} {body}")
        raise DeliveryRefused(
            "slack_webhook",
            f"Slack refused the message: {status} {body}",
            "check the webhook is still installed and the blocks are valid",
            code=body.strip() or str(status),
        )

    def update(self, message: ChatMessage, *, channel: str, ts: str) -> None:
        raise DeliveryRefused("slack_webhook", "webhooks cannot update messages")

    def post(self, text: str, blocks: list[dict[str, Any]] | None = None) -> None:
        self.send(ChatMessage(text, blocks or []), route=None)


class SlackBotChannel:
    """A bot token: `chat.postMessage` (route = channel name or id), `chat.update`, threads."""

    threads = True
    name = "slack-bot"

    def __init__(
        self,
        token: str,
        *,
        default_channel: str = "",
        api_url: str = "https://slack.com/api/",
        delivery: Delivery | None = None,
        pacer: ChannelPacer | None = None,
    ) -> None:
        from slack_sdk import WebClient

        self.delivery = delivery or Delivery()
        self.pacer = pacer or ChannelPacer(self.delivery.min_interval)
        self.default_channel = default_channel
        self._token = token
        self._ids: dict[str, str] = {}  # channel name -> id, learnt from Slack's answers
        self._client = WebClient(
            token=token,
            base_url=api_url,
            timeout=self.delivery.timeout,
            logger=sdk_logger("web", [token]),
            retry_handlers=_retry_handlers(self.pacer, self._channel_of, self.delivery),
        )

    def _key(self, channel: str) -> str:
        return self._ids.get(channel, channel)

    def _channel_of(self, request: Any) -> str:
        try:
            body = json.loads(request.data or b"{}")
        except (ValueError, TypeError):
            return "unknown"
        return self._key(str(body.get("channel", "unknown")))

    def _call(self, method: str, **kwargs: Any) -> dict[str, Any]:
        from slack_sdk.errors import SlackApiError

        try:
            with self.pacer.turn(self._key(kwargs["channel"])):
                response = getattr(self._client, method)(**kwargs)
        except SlackApiError as exc:
            status = int(exc.response.status_code)
            data = exc.response.data if isinstance(exc.response.data, dict) else {}
            error = str(data.get("error") or f"http_{status}")
            if status == 429 or status >= 500 or error in RETRYABLE_API_ERRORS:
                raise DeliveryFailed(f"Slack {method} answered {status} {error}") from None
            raise DeliveryRefused(
                f"slack.{method}",
                f"Slack refused the message: {error}",
                "check the bot token, that the bot is in the channel, and the blocks",
                code=error,
            ) from None
        except (OSError, ValueError) as exc:  # unreachable, or a body that is not JSON
            problem = redact(f"{type(exc).__name__}", [self._token])
            raise DeliveryFailed(f"Slack {method} failed: {problem}") from None
        return dict(response.data) if isinstance(response.data, dict) else {}

    def send(
        self,
        message: ChatMessage,
        *,
        route: str | None,
        thread_ts: str | None = None,
        broadcast: bool = False,
    ) -> Posted:
        target = route or self.default_channel
        if not target:
            raise DeliveryRefused(
                "notify.slack_channel",
                "no Slack channel to post to",
                "set notify.slack_channel in the registry or MLRELAY_SLACK_CHANNEL",
                code="no_channel",
            )
        extra: dict[str, Any] = {}
        if thread_ts:
            extra = {"thread_ts": thread_ts, "reply_broadcast": broadcast}
        data = self._call(
            "chat_postMessage",
            channel=target,
            unfurl_links=False,
            unfurl_media=False,
            **message.payload(),
            **extra,
        )
        channel_id = str(data.get("channel") or target)
        self._ids[target] = channel_id
        return Posted(channel_id, str(data.get("ts") or ""))

    def update(self, message: ChatMessage, *, channel: str, ts: str) -> None:
        payload = {"blocks": [], "attachments": [], **message.payload()}  # clear what is gone
        self._call("chat_update", channel=channel, ts=ts, **payload)

    def post(self, text: str, blocks: list[dict[str, Any]] | None = None) -> None:
        self.send(ChatMessage(text, blocks or []), route=None)
