"""Slack through the real `slack_sdk` clients: bot token (post, update in place, thread) or
incoming webhooks (one message per post).

Every call has retry handlers for connection errors, 429 (`Retry-After`) and 500/503
(exponential backoff), paced per channel. The token and webhook URLs are secrets: redacted from
slack_sdk's log lines and never put into an error message. A send that still fails raises
`ChatUnavailable` (transient: Pub/Sub redelivers, then dead-letters) or `ChatRefused` (Slack
said no for good).

Bot mode posts each message once: `chat.postMessage` has no idempotency key, so every post
carries Slack message metadata with a key of its own (`mlrelay_notification`, `{"key": ...}`).
A post whose connection dropped after it may have reached Slack is not retried blindly: the
channel (or the thread) is looked up first (`conversations.history` / `conversations.replies`
with `include_all_metadata`, the last hour, 200 messages) and a message with the key is adopted.
A lookup Slack refuses (`missing_scope`: the bot lacks `channels:history`/`groups:history`, or
`channels:read`/`groups:read` to find a channel's id from its name) is warned about once and the
message is posted again (a possible duplicate). Webhooks cannot look anything up: a lost answer
to a webhook post is retried on the dropped connection, at most one duplicate per lost answer.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import structlog
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

from mlrelay_notifier.chat import ChatRetries, Posted
from mlrelay_notifier.errors import ChatRefused, ChatUnavailable
from mlrelay_notifier.pacing import ChannelPacer, PacedServerErrorRetryHandler, RetryAfterHandler
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


log = structlog.get_logger()

POST_TAG = "mlrelay_notification"  # the metadata event_type of every bot-mode post
LOOKBACK_SECONDS = 3600  # how far back a lost post is looked for
LOOKUP_LIMIT = 200  # messages per lookup (Slack's recommended page size)
CHANNEL_PAGES = 10  # conversations.list pages read to find a channel's id from its name
_CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{6,}")


def _never_sent(error: Exception | None) -> bool:
    """The connection was refused: the request cannot have reached Slack."""
    reason = getattr(error, "reason", error)
    return isinstance(reason, ConnectionRefusedError)


class SentOnceRetryHandler(ConnectionErrorRetryHandler):
    """slack_sdk's connection-error retry, except for a `chat.postMessage` that may have been
    sent (Slack may have posted it): `SlackBotChat.send` looks that one up first."""

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if request.url.endswith("/chat.postMessage") and not _never_sent(error):
            return False
        return super()._can_retry(state=state, request=request, response=response, error=error)


class DeliveryUncertain(ChatUnavailable):
    """A `chat.postMessage` got no answer: Slack may or may not have posted it."""

    def __init__(self, problem: str, *, timed_out: bool) -> None:
        super().__init__(problem)
        self.timed_out = timed_out


def _retry_handlers(pacer: ChannelPacer, channel_of: Any, retries: ChatRetries) -> list[Any]:
    return [
        SentOnceRetryHandler(max_retry_count=retries.connection_retries),
        RetryAfterHandler(
            pacer,
            channel_of,
            max_retry_count=retries.rate_limit_retries,
            max_wait=retries.max_retry_after,
        ),
        PacedServerErrorRetryHandler(
            pacer,
            channel_of,
            max_retry_count=retries.server_error_retries,
            backoff_factor=retries.backoff_factor,
        ),
    ]


class SlackWebhookChat:
    """Incoming webhooks: route None = the default webhook, NAME = SLACK_WEBHOOK_URL_<NAME>."""

    threads = False
    name = "slack-webhook"

    def __init__(
        self,
        webhooks: dict[str | None, str],
        retries: ChatRetries | None = None,
        pacer: ChannelPacer | None = None,
    ) -> None:
        self.retries = retries or ChatRetries()
        self.pacer = pacer or ChannelPacer(self.retries.min_interval)
        self._urls = {route: url for route, url in webhooks.items() if url}
        self._secrets = list(self._urls.values())
        self._clients: dict[str | None, Any] = {}

    def _client(self, route: str | None) -> Any:
        if route not in self._urls:
            named = f"SLACK_WEBHOOK_URL_{route.upper()}" if route else "SLACK_WEBHOOK_URL"
            raise ChatRefused(
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
                timeout=self.retries.timeout,
                logger=sdk_logger("webhook", self._secrets),
                retry_handlers=_retry_handlers(self.pacer, lambda _r: key, self.retries),
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
        key: str | None = None,
        look_first: bool = False,
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
            raise ChatUnavailable(f"Slack webhook unreachable: {type(exc).__name__}") from None
        status = int(response.status_code)
        if status == 200:
            return Posted(route or "default", None)
        body = redact(str(response.body or "")[:200], self._secrets)
        if status == 429 or status >= 500:
            raise ChatUnavailable(f"Slack webhook answered {status} {body}")
        raise ChatRefused(
            "slack_webhook",
            f"Slack refused the message: {status} {body}",
            "check the webhook is still installed and the blocks are valid",
            code=body.strip() or str(status),
        )

    def update(self, message: ChatMessage, *, channel: str, ts: str) -> None:
        raise ChatRefused("slack_webhook", "webhooks cannot update messages")

    def post(self, text: str, blocks: list[dict[str, Any]] | None = None) -> None:
        self.send(ChatMessage(text, blocks or []), route=None)


class SlackBotChat:
    """A bot token: `chat.postMessage` (route = channel name or id), `chat.update`, threads."""

    threads = True
    name = "slack-bot"

    def __init__(
        self,
        token: str,
        *,
        default_channel: str = "",
        api_url: str = "https://slack.com/api/",
        retries: ChatRetries | None = None,
        pacer: ChannelPacer | None = None,
    ) -> None:
        from slack_sdk import WebClient

        self.retries = retries or ChatRetries()
        self.pacer = pacer or ChannelPacer(self.retries.min_interval)
        self.default_channel = default_channel
        self._token = token
        self._ids: dict[str, str] = {}  # channel name -> id, learnt from Slack's answers
        self._uncertain: set[str] = set()  # keys of posts that got no answer
        self._refused: set[str] = set()  # lookup methods Slack refused (warned once)
        self._client = WebClient(
            token=token,
            base_url=api_url,
            timeout=self.retries.timeout,
            logger=sdk_logger("web", [token]),
            retry_handlers=_retry_handlers(self.pacer, self._channel_of, self.retries),
        )

    def _key(self, channel: str) -> str:
        return self._ids.get(channel, channel)

    def _channel_of(self, request: Any) -> str:
        raw = request.data or b""
        try:
            body = json.loads(raw or b"{}")
        except (ValueError, TypeError):  # a form post (slack_sdk's lookups)
            body = {k: v[0] for k, v in parse_qs(raw.decode(errors="replace")).items()}
        if not raw:  # parameters in the query
            body = {k: v[0] for k, v in parse_qs(urlsplit(request.url).query).items()}
        return self._key(str(body.get("channel", "unknown")))

    def _call(self, method: str, *, pace: str | None = None, **kwargs: Any) -> dict[str, Any]:
        from slack_sdk.errors import SlackApiError

        try:
            with self.pacer.turn(self._key(pace or kwargs["channel"])):
                response = getattr(self._client, method)(**kwargs)
        except SlackApiError as exc:
            status = int(exc.response.status_code)
            data = exc.response.data if isinstance(exc.response.data, dict) else {}
            error = str(data.get("error") or f"http_{status}")
            if status == 429 or status >= 500 or error in RETRYABLE_API_ERRORS:
                raise ChatUnavailable(f"Slack {method} answered {status} {error}") from None
            raise ChatRefused(
                f"slack.{method}",
                f"Slack refused the message: {error}",
                "check the bot token, that the bot is in the channel, and the blocks",
                code=error,
            ) from None
        except (OSError, ValueError) as exc:  # unreachable, or a body that is not JSON
            problem = redact(f"{type(exc).__name__}", [self._token])
            if method == "chat_postMessage" and isinstance(exc, OSError) and not _never_sent(exc):
                reason = getattr(exc, "reason", exc)
                raise DeliveryUncertain(
                    f"Slack {method} got no answer: {problem}",
                    timed_out=isinstance(reason, TimeoutError),
                ) from None
            raise ChatUnavailable(f"Slack {method} failed: {problem}") from None
        return dict(response.data) if isinstance(response.data, dict) else {}

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
        """Post once. `key` (unique to this post) tags the message; when an earlier attempt
        got no answer (here, or `look_first`: an earlier delivery), the message is looked up by
        its key before it is posted again."""
        target = route or self.default_channel
        if not target:
            raise ChatRefused(
                "notify.slack_channel",
                "no Slack channel to post to",
                "set notify.slack_channel in the registry or MLRELAY_SLACK_CHANNEL",
                code="no_channel",
            )
        extra: dict[str, Any] = {}
        if thread_ts:
            extra = {"thread_ts": thread_ts, "reply_broadcast": broadcast}
        if key:
            extra["metadata"] = {"event_type": POST_TAG, "event_payload": {"key": key}}
        look = bool(key) and (look_first or key in self._uncertain)
        attempts = 1 + self.retries.connection_retries
        for attempt in range(attempts):
            if look and key:
                found = self._find_posted(target, key, thread_ts)
                if found is not None:
                    self._uncertain.discard(key)
                    log.info("slack_post_found", key=key, ts=found.ts)
                    return found
            try:
                data = self._call(
                    "chat_postMessage",
                    channel=target,
                    unfurl_links=False,
                    unfurl_media=False,
                    **message.payload(),
                    **extra,
                )
                break
            except DeliveryUncertain as exc:
                if not key:
                    raise
                self._uncertain.add(key)  # whoever tries next looks first
                if exc.timed_out or attempt == attempts - 1:
                    raise  # a timed-out post may still land: leave it to the redelivery
                log.warning("slack_post_unanswered", key=key, attempt=attempt + 1)
                look = True
        if key:
            self._uncertain.discard(key)
        channel_id = str(data.get("channel") or target)
        self._ids[target] = channel_id
        return Posted(channel_id, str(data.get("ts") or ""))

    def _find_posted(self, target: str, key: str, thread_ts: str | None) -> Posted | None:
        """The message tagged `key` posted in the last hour (in the thread `thread_ts`), or
        None: none found, or Slack refused the lookup (warned once, then posted again)."""
        channel = self._channel_id(target)
        if channel is None:
            return None
        window: dict[str, Any] = {
            "channel": channel,
            "oldest": f"{time.time() - LOOKBACK_SECONDS:.6f}",
            "limit": LOOKUP_LIMIT,
            "include_all_metadata": True,
        }
        try:
            if thread_ts:
                data = self._call("conversations_replies", ts=thread_ts, **window)
            else:
                data = self._call("conversations_history", **window)
        except ChatRefused as exc:
            self._lookup_refused(
                "conversations.replies" if thread_ts else "conversations.history", exc.code
            )
            return None
        for found in data.get("messages") or []:
            metadata = found.get("metadata") or {}
            payload = metadata.get("event_payload") or {}
            if metadata.get("event_type") == POST_TAG and payload.get("key") == key:
                return Posted(channel, str(found.get("ts") or ""))
        return None

    def _channel_id(self, target: str) -> str | None:
        """A channel's id (lookups take ids only): known, given, or found by name."""
        if target in self._ids:
            return self._ids[target]
        if _CHANNEL_ID.fullmatch(target):
            return target
        name, cursor = target.removeprefix("#"), ""
        for _ in range(CHANNEL_PAGES):
            try:
                data = self._call(
                    "conversations_list",
                    pace="conversations.list",
                    types="public_channel,private_channel",
                    exclude_archived=True,
                    limit=LOOKUP_LIMIT,
                    cursor=cursor or None,
                )
            except ChatRefused as exc:
                self._lookup_refused("conversations.list", exc.code)
                return None
            for channel in data.get("channels") or []:
                if channel.get("name") == name:
                    self._ids[target] = str(channel["id"])
                    return self._ids[target]
            cursor = str((data.get("response_metadata") or {}).get("next_cursor") or "")
            if not cursor:
                break
        return None

    def _lookup_refused(self, method: str, code: str) -> None:
        if method not in self._refused:
            self._refused.add(method)
            log.warning(
                "slack_lookup_refused",
                method=method,
                error=code,
                fix="give the bot channels:history, groups:history, channels:read and "
                "groups:read, or a lost answer may post a message twice",
            )

    def update(self, message: ChatMessage, *, channel: str, ts: str) -> None:
        payload = {"blocks": [], "attachments": [], **message.payload()}  # clear what is gone
        self._call("chat_update", channel=channel, ts=ts, **payload)

    def post(self, text: str, blocks: list[dict[str, Any]] | None = None) -> None:
        self.send(ChatMessage(text, blocks or []), route=None)
