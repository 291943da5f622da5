"""The notifier's port to a chat service (`Poster`) and what a delivery can end in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from mlrelay.errors import PermanentError, TransientError
from mlrelay_notifier.render import ChatMessage


class DeliveryFailed(TransientError):
    """Slack could not be reached or asked us to come back later, after the client's retries."""


class DeliveryRefused(PermanentError):
    """Slack refused the message (bad blocks, unknown channel, revoked token or webhook)."""

    def __init__(self, field: str, problem: str, fix: str = "", *, code: str = "") -> None:
        super().__init__(field, problem, fix)
        self.code = code


@dataclass(frozen=True)
class Posted:
    channel: str  # the channel id (bot) or the webhook's name
    ts: str | None  # the message's timestamp (bot mode); webhooks return none


@dataclass(frozen=True)
class Delivery:
    """How hard to try within one delivery attempt (Pub/Sub's redelivery comes on top)."""

    min_interval: float = 1.0
    rate_limit_retries: int = 3
    server_error_retries: int = 2
    connection_retries: int = 2
    backoff_factor: float = 0.5  # 500/503: sleep factor * 2**attempt (with jitter)
    max_retry_after: float = 30.0  # a longer Retry-After is left to Pub/Sub's redelivery
    timeout: int = 30  # one request's wait for an answer (MLRELAY_HTTP_TIMEOUT_SECONDS)


class Poster(Protocol):
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


class SimpleChannel(Protocol):
    """The shared `ChatChannel` port: one message, text and optional blocks."""

    name: str

    def post(self, text: str, blocks: list[dict[str, Any]] | None = None) -> None: ...
