"""How many pushes the Pub/Sub emulator keeps in flight on one subscription.

Publishes N messages at once to a topic whose push subscription delivers to a loopback endpoint
that holds each request for `--hold` seconds, then answers 204. It prints, per N, the time from
the publish to the last answer, the most requests the endpoint held at once, and what N pushes
would take one at a time (N x hold) and all at once (hold): no mlrelay code is in the path, so
whatever serialises the pushes here is the emulator. Run from the repo root:
`.venv/bin/python bench/push_window.py`.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PROJECT = "mlrelay-push-window"


@dataclass
class Endpoint:
    """Holds each push `hold` seconds; keeps when each arrived and how many were in flight."""

    hold: float
    lock: threading.Lock = field(default_factory=threading.Lock)
    in_flight: int = 0
    most: int = 0
    arrived: list[float] = field(default_factory=list)
    answered: list[float] = field(default_factory=list)

    def answer(self, request: Any) -> Any:
        from tests.fakes.server import Answer

        with self.lock:
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
            self.arrived.append(time.monotonic())
        time.sleep(self.hold)
        with self.lock:
            self.in_flight -= 1
            self.answered.append(time.monotonic())
        return Answer(204)

    def reset(self) -> None:
        with self.lock:
            self.most = 0
            self.arrived.clear()
            self.answered.clear()


@dataclass(frozen=True)
class Figures:
    size: int
    seconds: float  # publish -> the last answer
    most_in_flight: int
    serial: float  # N x hold
    parallel: float  # hold


def measure(size: int, endpoint: Endpoint, publisher: Any, topic: str, timeout: float) -> Figures:
    endpoint.reset()
    began = time.monotonic()
    futures = [publisher.publish(topic, b"%d" % i) for i in range(size)]
    for future in futures:
        future.result(timeout=30)
    deadline = began + timeout
    while time.monotonic() < deadline:
        with endpoint.lock:
            if len(endpoint.answered) >= size:
                last = max(endpoint.answered)
                return Figures(
                    size, last - began, endpoint.most, size * endpoint.hold, endpoint.hold
                )
        time.sleep(0.02)
    raise SystemExit(f"N={size}: {len(endpoint.answered)} of {size} pushes in {timeout:.0f} s")


def run(sizes: tuple[int, ...], hold: float, timeout: float) -> list[Figures]:

    from google.cloud import pubsub_v1  # type: ignore[attr-defined,unused-ignore]

    peers: Any = importlib.import_module("tests.integration.peers")
    server_module: Any = importlib.import_module("tests.fakes.server")
    endpoint = Endpoint(hold)
    figures = []
    with (
        tempfile.TemporaryDirectory() as workdir,
        peers.pubsub_emulator(Path(workdir)) as host,
        server_module.LoopbackServer(endpoint.answer, keep_alive=True, quiet=True) as server,
    ):
        os.environ["PUBSUB_EMULATOR_HOST"] = host
        publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
        topic = publisher.topic_path(PROJECT, "probe")
        publisher.create_topic(name=topic)
        subscriber.create_subscription(
            request={
                "name": subscriber.subscription_path(PROJECT, "probe-push"),
                "topic": topic,
                "push_config": {"push_endpoint": server.url + "/"},
                "ack_deadline_seconds": 600,
            }
        )
        measure(1, endpoint, publisher, topic, timeout)  # the first push opens the connection
        for size in sizes:
            figures.append(measure(size, endpoint, publisher, topic, timeout))
    return figures


def table(figures: list[Figures]) -> list[str]:
    lines = [
        f"{'N':>4}{'last answer s':>15}{'most in flight':>16}{'one at a time s':>17}"
        f"{'all at once s':>15}"
    ]
    for f in figures:
        lines.append(
            f"{f.size:>4}{f.seconds:>15.2f}{f.most_in_flight:>16}{f.serial:>17.2f}"
            f"{f.parallel:>15.2f}"
        )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--hold", type=float, default=1.0, help="seconds each push is held")
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()
    figures = run(tuple(sorted(args.sizes)), args.hold, args.timeout)
    print(f"\nPub/Sub emulator, one push subscription, each push held {args.hold:.1f} s:")
    for line in table(figures):
        print("  " + line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
