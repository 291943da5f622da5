"""Slack's pace: about one message per second per channel, and its `Retry-After` on a 429.

`ChannelPacer` lets one send at a time go to a channel, and starts the next one no sooner than
`min_interval` after the previous one was answered, so Slack never sees two requests for a
channel closer than that from this process (whatever the network latency). It cannot see other
processes: two Cloud Function instances posting to one channel can together exceed the pace;
Slack then answers 429 and `RetryAfterHandler` waits as long as Slack asks (and holds back every
later send to that channel in this process too).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from slack_sdk.http_retry.builtin_handlers import (
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

ChannelOf = Callable[[HttpRequest], str]


class ChannelPacer:
    def __init__(
        self,
        min_interval: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.min_interval = min_interval
        self._clock = clock
        self._sleep = sleep
        self._free_at: dict[str, float] = {}
        self._turns: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    @contextmanager
    def turn(self, channel: str) -> Iterator[None]:
        """Hold the channel for one send (with its retries): wait until it is free, and keep it
        free for `min_interval` after the send is answered."""
        with self._lock:
            turn = self._turns.setdefault(channel, threading.Lock())
        with turn:
            self.wait_until_free(channel)
            try:
                yield
            finally:
                self.answered(channel)

    def wait_until_free(self, channel: str) -> float:
        with self._lock:
            wait = self._free_at.get(channel, 0.0) - self._clock()
        if wait > 0:
            self._sleep(wait)
        return max(wait, 0.0)

    def answered(self, channel: str) -> None:
        """A request to the channel was just answered: the next may go `min_interval` later."""
        self.hold(channel, self.min_interval)

    def hold(self, channel: str, seconds: float) -> None:
        """Nothing more to `channel` for `seconds` from now (Slack's Retry-After)."""
        with self._lock:
            until = self._clock() + seconds
            self._free_at[channel] = max(self._free_at.get(channel, until), until)


def retry_after_seconds(response: HttpResponse | None) -> float | None:
    if response is None:
        return None
    for name, values in response.headers.items():
        if name.lower() == "retry-after":
            value = values[0] if isinstance(values, list) else values
            try:
                return max(0.0, float(value))
            except (TypeError, ValueError):
                return None
    return None


class RetryAfterHandler(RateLimitErrorRetryHandler):
    """Retry a 429 after exactly the `Retry-After` Slack sent (slack_sdk's own handler adds up to
    a second of jitter), through the pacer, so other sends to the channel wait too. A wait longer
    than `max_wait` is not slept here: the delivery fails and Pub/Sub redelivers later."""

    def __init__(
        self, pacer: ChannelPacer, channel_of: ChannelOf, *, max_retry_count: int, max_wait: float
    ) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.pacer = pacer
        self.channel_of = channel_of
        self.max_wait = max_wait

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is None or response.status_code != 429:
            return False
        wait = retry_after_seconds(response)
        self.pacer.hold(self.channel_of(request), 1.0 if wait is None else wait)
        return wait is None or wait <= self.max_wait

    def prepare_for_next_attempt(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        state.next_attempt_requested = True
        channel = self.channel_of(request)
        self.pacer.answered(channel)
        self.pacer.wait_until_free(channel)
        state.increment_current_attempt()


class PacedServerErrorRetryHandler(ServerErrorRetryHandler):
    """slack_sdk's 500/503 retry with exponential backoff, then a paced slot for the retry."""

    def __init__(
        self,
        pacer: ChannelPacer,
        channel_of: ChannelOf,
        *,
        max_retry_count: int,
        backoff_factor: float,
    ) -> None:
        super().__init__(
            max_retry_count=max_retry_count,
            interval_calculator=BackoffRetryIntervalCalculator(backoff_factor=backoff_factor),
        )
        self.pacer = pacer
        self.channel_of = channel_of

    def prepare_for_next_attempt(self, **kwargs: Any) -> None:
        channel = self.channel_of(kwargs["request"])
        self.pacer.answered(channel)
        super().prepare_for_next_attempt(**kwargs)  # the backoff
        self.pacer.wait_until_free(channel)
