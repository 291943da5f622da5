"""An in-process bus with Pub/Sub's delivery contract, delivering on a pool of worker threads.

Every subscriber gets the very CloudEvent envelope Eventarc delivers to a Cloud Function. Delivery
is at least once: a handler that raises is retried with exponential backoff, and after
`max_attempts` the message goes to the dead-letter topic (with the attributes Pub/Sub adds there)
and into the dead-letter store, `deadletters/<subscription>/<message_id>.json` in the bucket.

Like Cloud Functions scaling out, up to `workers` deliveries run at the same time, so the runs of
a fan-out or a backfill overlap. Messages of one run (same ordering key, else the same `run_id`
attribute) reach one subscription one at a time and in order, as Pub/Sub does with ordering keys:
what one run emits stays readable in order while different runs proceed side by side.
"""

from __future__ import annotations

import base64
import heapq
import itertools
import json
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import structlog
from cloudevents.http import CloudEvent

from mlrelay.contracts import utc_now
from mlrelay.ports.protocols import ObjectStore
from mlrelay.stage import keys
from mlrelay.stage.envelope import PubsubMessage, to_cloudevent

log = structlog.get_logger()

Handler = Callable[[CloudEvent], None]
Listener = Callable[[str, PubsubMessage], None]


@dataclass
class Subscription:
    name: str
    topic: str
    handler: Handler
    max_attempts: int
    dead_letter_topic: str | None
    accepts: Callable[[Mapping[str, str]], bool] | None = None  # the subscription's filter


@dataclass(order=True)
class _Delivery:
    due: float
    seq: int
    subscription: Subscription = field(compare=False)
    message: PubsubMessage = field(compare=False)
    attempt: int = field(compare=False, default=1)

    @property
    def order_key(self) -> tuple[str, str] | None:
        """(subscription, key) whose deliveries must not overlap, or None: any order."""
        key = self.message.ordering_key or self.message.attributes.get("run_id", "")
        return (self.subscription.name, key) if key else None


@dataclass
class BusStats:
    published: Counter[str] = field(default_factory=Counter)
    deliveries: int = 0
    failed_deliveries: int = 0
    dead_lettered: int = 0
    most_concurrent: int = 0  # the most deliveries that ran at the same time


class LocalBus:
    def __init__(
        self,
        project: str,
        dead_letter_store: ObjectStore,
        *,
        max_attempts: int = 5,
        min_backoff: float = 0.1,
        max_backoff: float = 5.0,
        workers: int = 4,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if workers < 1:
            raise ValueError("the bus needs at least one worker")
        self.project = project
        self.store = dead_letter_store
        self.max_attempts = max_attempts
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.workers = workers
        self._clock = clock
        self._subs: dict[str, list[Subscription]] = {}
        self._queue: list[_Delivery] = []
        self._seq = itertools.count()
        self._listeners: list[Listener] = []
        self._changed = threading.Condition(threading.RLock())
        self._in_flight = 0
        # keys with a delivery running or waiting for its retry: later messages of the key wait
        self._held: set[tuple[str, str]] = set()
        self.stats = BusStats()

    def topic_path(self, topic: str) -> str:
        return f"projects/{self.project}/topics/{topic}"

    def subscribe(
        self,
        topic: str,
        name: str,
        handler: Handler,
        *,
        dead_letter_topic: str | None = None,
        max_attempts: int | None = None,
        accepts: Callable[[Mapping[str, str]], bool] | None = None,
    ) -> None:
        """`accepts`: a filter on the attributes, as a Pub/Sub subscription filter: a message
        it refuses is never delivered to this subscription (and acked for it)."""
        sub = Subscription(
            name, topic, handler, max_attempts or self.max_attempts, dead_letter_topic, accepts
        )
        self._subs.setdefault(topic, []).append(sub)

    def listen(self, listener: Listener) -> None:
        """Observe every published message (the CLI's progress display uses this)."""
        self._listeners.append(listener)

    def publish(self, topic: str, data: bytes, attributes: dict[str, str]) -> str:
        message = PubsubMessage(
            data=data,
            attributes=dict(attributes),
            message_id=uuid.uuid4().hex[:16],
            publish_time=utc_now(),
        )
        self._publish_message(topic, message)
        return message.message_id

    def _publish_message(self, topic: str, message: PubsubMessage) -> None:
        with self._changed:
            self.stats.published[topic] += 1
            for listener in self._listeners:
                listener(topic, message)
            for sub in self._subs.get(topic, []):
                self._enqueue(sub, message, attempt=1, delay=0.0)

    def inject(self, topic: str, message: PubsubMessage) -> None:
        """Deliver an existing message again, id and publish time unchanged: what Pub/Sub does
        when it redelivers (at least once), or a message published at a chosen time."""
        with self._changed:
            for sub in self._subs.get(topic, []):
                self._enqueue(sub, message, attempt=1, delay=0.0)

    def _enqueue(
        self, sub: Subscription, message: PubsubMessage, attempt: int, delay: float
    ) -> None:
        if sub.accepts is not None and not sub.accepts(message.attributes):
            return  # filtered out: Pub/Sub never delivers it to this subscription
        with self._changed:
            heapq.heappush(
                self._queue,
                _Delivery(self._clock() + delay, next(self._seq), sub, message, attempt),
            )
            self._changed.notify_all()

    def backoff(self, attempt: int) -> float:
        return float(min(self.max_backoff, self.min_backoff * 2 ** (attempt - 1)))

    def pending(self) -> int:
        with self._changed:
            return len(self._queue) + self._in_flight

    def _next_ready(self, now: float) -> _Delivery | None:
        """The earliest due delivery whose key is free (a retry holds its own key)."""
        skipped: list[_Delivery] = []
        found = None
        while self._queue and self._queue[0].due <= now:
            candidate = heapq.heappop(self._queue)
            key = candidate.order_key
            if key is None or key not in self._held or candidate.attempt > 1:
                found = candidate
                break
            skipped.append(candidate)
        for item in skipped:
            heapq.heappush(self._queue, item)
        return found

    def run_until_idle(self, deadline_seconds: float | None = None) -> BusStats:
        """Deliver until no message is left (or the deadline passes); returns the counters.

        At the deadline no new delivery starts; those already running are waited for."""
        stop_at = None if deadline_seconds is None else self._clock() + deadline_seconds
        with ThreadPoolExecutor(self.workers, thread_name_prefix="bus") as pool, self._changed:
            while self._queue or self._in_flight:
                now = self._clock()
                if stop_at is not None and now >= stop_at:
                    break
                ready = self._next_ready(now) if self._in_flight < self.workers else None
                if ready is not None:
                    key = ready.order_key
                    if key is not None:
                        self._held.add(key)
                    self._in_flight += 1
                    self.stats.most_concurrent = max(self.stats.most_concurrent, self._in_flight)
                    pool.submit(self._run, ready)
                    continue
                waits = [] if stop_at is None else [stop_at - now]
                if self._in_flight < self.workers:  # wake for the next one to fall due
                    later = [d.due - now for d in self._queue if d.due > now]
                    waits += [min(later)] if later else []
                self._changed.wait(min(waits) if waits else None)
        return self.stats

    def _run(self, delivery: _Delivery) -> None:
        retried = False
        try:
            retried = self._deliver(delivery)
        finally:
            with self._changed:
                self._in_flight -= 1
                key = delivery.order_key
                if key is not None and not retried:
                    self._held.discard(key)
                self._changed.notify_all()

    def _deliver(self, delivery: _Delivery) -> bool:
        """One attempt; True when the message was queued again for a retry."""
        sub, attempt = delivery.subscription, delivery.attempt
        message = replace(
            delivery.message,
            delivery_attempt=attempt,
            subscription=f"projects/{self.project}/subscriptions/{sub.name}",
        )
        with self._changed:
            self.stats.deliveries += 1
        try:
            sub.handler(to_cloudevent(message, self.topic_path(sub.topic)))
        except Exception as exc:  # the bus is Pub/Sub: any failure means "nack, redeliver"
            with self._changed:
                self.stats.failed_deliveries += 1
            log.warning(
                "delivery_failed",
                subscription=sub.name,
                attempt=attempt,
                run_id=message.attributes.get("run_id", "unassigned"),
                error=f"{type(exc).__name__}: {exc}",
            )
            if attempt >= sub.max_attempts:
                self._dead_letter(sub, message, exc)
                return False
            self._enqueue(sub, delivery.message, attempt + 1, self.backoff(attempt))
            return True
        return False

    def _dead_letter(self, sub: Subscription, message: PubsubMessage, exc: Exception) -> None:
        """Keep the message, then forward it to the dead-letter topic as Pub/Sub does.

        The record is keyed by the forwarded message's id, the key the dead-letter function's
        own `keep_dead_letter` uses: its create-only write then finds this record (which, unlike
        the cloud's, knows the last error) and keeps it."""
        with self._changed:
            self.stats.dead_lettered += 1
        forwarded = sub.dead_letter_topic and sub.dead_letter_topic != sub.topic
        kept_as = uuid.uuid4().hex[:16] if forwarded else message.message_id
        record = {
            "subscription": sub.name,
            "topic": sub.topic,
            "delivery_attempts": message.delivery_attempt,
            "last_error": "".join(traceback.format_exception_only(exc)).strip(),
            "dead_lettered_at": utc_now().isoformat(),
            "message": {
                "message_id": kept_as,
                "attributes": message.attributes,
                "data": message.data.decode(errors="replace"),
                "data_base64": base64.b64encode(message.data).decode(),
                "publish_time": message.publish_time.isoformat(),
            },
        }
        key = keys.dead_letter(sub.name, kept_as)
        self.store.create(key, json.dumps(record, indent=2).encode())
        log.error(
            "message_dead_lettered",
            subscription=sub.name,
            store_key=key,
            run_id=message.attributes.get("run_id", "unassigned"),
        )
        if forwarded and sub.dead_letter_topic:
            # what Pub/Sub adds when it forwards a message to a dead-letter topic
            attributes = {
                **message.attributes,
                "CloudPubSubDeadLetterSourceSubscription": sub.name,
                "CloudPubSubDeadLetterSourceSubscriptionProject": self.project,
                "CloudPubSubDeadLetterSourceTopicPublishTime": message.publish_time.isoformat(),
                "CloudPubSubDeadLetterSourceDeliveryCount": str(message.delivery_attempt),
            }
            copy = PubsubMessage(
                data=message.data, attributes=attributes, message_id=kept_as, publish_time=utc_now()
            )
            self._publish_message(sub.dead_letter_topic, copy)
