"""Push a subscription's messages W at a time, where the Pub/Sub emulator pushes 2.

The emulator runs two push loops per subscription, each pushing one message and waiting for its
answer (bench/push_window.py measures it), so no more than 2 pushes per subscription are ever in
flight. Pub/Sub itself grows its push window while the endpoint answers with success, and Cloud
Run functions meet the pushes with up to `max_instances` x `concurrency` requests at once
(infra/modules/mlrelay/locals.tf). A `PushPump` turns a push subscription into a pull one
(ModifyPushConfig with no endpoint) and delivers what it pulls to the same endpoint, with the
same push body (`message`, `subscription`, `deliveryAttempt`), at most `window` at once: a 2xx
acknowledges, anything else nacks (the emulator redelivers).
"""

from __future__ import annotations

import base64
import http.client
import json
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

# requests one function serves at once when deployed: max_instances x concurrency, from
# infra/modules/mlrelay/locals.tf (the trigger, snapshotter and deployer: 10 instances of 1; the
# cancel and approvals consumers: 2 of 1; the notifier's two functions: 1 instance of 8)
DEPLOYED_WINDOW = {
    "mlrelay-trigger": 10,
    "mlrelay-snapshotter": 10,
    "mlrelay-deployer": 10,
    "mlrelay-cancel": 2,
    "mlrelay-approvals": 2,
    "mlrelay-notifier": 8,
    "mlrelay-dead-letters": 8,
}


def push_body(received: Any, subscription: str) -> bytes:
    """The JSON body Pub/Sub pushes for one received message."""
    message = received.message
    published = message.publish_time.isoformat().replace("+00:00", "Z")
    body: dict[str, Any] = {
        "message": {
            "data": base64.b64encode(message.data).decode(),
            "attributes": dict(message.attributes),
            "messageId": message.message_id,
            "message_id": message.message_id,
            "publishTime": published,
            "publish_time": published,
        },
        "subscription": subscription,
    }
    if received.delivery_attempt:
        body["deliveryAttempt"] = received.delivery_attempt
    return json.dumps(body).encode()


class PushPump:
    """Pull `subscription` and push each message to `endpoint`, `window` at a time."""

    def __init__(self, subscription: str, endpoint: str, window: int) -> None:
        from google.cloud import pubsub_v1  # type: ignore[attr-defined,unused-ignore]

        self.subscription, self.endpoint, self.window = subscription, endpoint, window
        self.subscriber = pubsub_v1.SubscriberClient()
        self.in_flight = 0
        self.most = 0
        self.free = threading.Condition()
        self.stopping = threading.Event()
        self.pool = ThreadPoolExecutor(window, thread_name_prefix=f"pump-{subscription}")
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> PushPump:
        self.subscriber.modify_push_config(
            request={"subscription": self.subscription, "push_config": {}}
        )
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        with self.free:
            self.free.notify_all()
        self.thread.join(timeout=10)
        self.pool.shutdown(wait=True, cancel_futures=True)

    def _loop(self) -> None:
        warnings.filterwarnings("ignore", "The return_immediately flag", DeprecationWarning)
        while not self.stopping.is_set():
            with self.free:
                while self.in_flight >= self.window and not self.stopping.is_set():
                    self.free.wait(timeout=1)
                room = self.window - self.in_flight
            if self.stopping.is_set():
                return
            response = self.subscriber.pull(
                request={
                    "subscription": self.subscription,
                    "max_messages": room,
                    "return_immediately": True,
                },
                timeout=10,
            )
            if not response.received_messages:
                self.stopping.wait(0.02)
                continue
            for received in response.received_messages:
                with self.free:
                    self.in_flight += 1
                    self.most = max(self.most, self.in_flight)
                self.pool.submit(self._deliver, received)

    def _deliver(self, received: Any) -> None:
        try:
            ok = self._post(push_body(received, self.subscription))
            if ok:
                self.subscriber.acknowledge(
                    subscription=self.subscription, ack_ids=[received.ack_id]
                )
            else:
                self.subscriber.modify_ack_deadline(
                    subscription=self.subscription,
                    ack_ids=[received.ack_id],
                    ack_deadline_seconds=0,
                )
        finally:
            with self.free:
                self.in_flight -= 1
                self.free.notify()

    def _post(self, body: bytes) -> bool:
        url = urlsplit(self.endpoint)
        connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=600)
        try:
            connection.request(
                "POST", url.path or "/", body=body, headers={"Content-Type": "application/json"}
            )
            answer = connection.getresponse()
            answer.read()
            return 200 <= answer.status < 300
        except OSError:
            return False
        finally:
            connection.close()
