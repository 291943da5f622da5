"""The notifier's port to a chat service (`Chat`), what a post returns and how hard to try."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from mlrelay_notifier.render import ChatMessage


@dataclass(frozen=True)
class Posted:
    channel: str  # the channel id (bot) or the webhook's name
    ts: str | None  # the message's timestamp (bot mode); webhooks return none


@dataclass(frozen=True)
class ChatRetries:
    """How hard to try within one delivery attempt (Pub/Sub's redelivery comes on top)."""

    min_interval: float = 1.0
    rate_limit_retries: int = 3
    server_error_retries: int = 2
    connection_retries: int = 2
    backoff_factor: float = 0.5  # 500/503: sleep factor * 2**attempt (with jitter)
    max_retry_after: float = 30.0  # a longer Retry-After is left to Pub/Sub's redelivery
    timeout: int = 30  # one request's wait for an answer (MLRELAY_HTTP_TIMEOUT_SECONDS)


class Chat(Protocol):
    """The notifier's port to a chat service."""

    name: str
    threads: bool  # True: messages can be updated in place and replied to in a thread

    # `key`: unique to this post (the same on every delivery); bot mode tags the message with it
    # and, after a post that got no answer (`look_first`: in an earlier delivery), looks the
    # message up by it instead of posting it again. Webhooks and the console ignore it.

    def send(
        self,
        message: ChatMessage,
        *,
        route: str | None,
        thread_ts: str | None = None,
        broadcast: bool = False,
        key: str | None = None,
        look_first: bool = False,
    ) -> Posted: ...

    def update(self, message: ChatMessage, *, channel: str, ts: str) -> None: ...


class LineChat(Protocol):
    """A chat that only prints lines (the console, a test's recorder); `PlainChat` makes it a
    `Chat` without threads."""

    name: str

    def post(self, text: str, blocks: list[dict[str, Any]] | None = None) -> None: ...
