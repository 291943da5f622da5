"""A loopback HTTP forwarder that counts what passes and injects faults.

It sits between a client and a peer (Pub/Sub push -> a function, a service -> the GCS or BigQuery
emulator): every request is forwarded unchanged unless a queued fault matches, in which case the
client gets that status (503, 500, 429...), or one of the faults without an answer: `DROP` (the
connection closed at once), `HANG` (nothing sent for `hang_seconds`, longer than the client's
timeout, then the connection closed; `hung_up` counts the clients that gave up first) or `LOSE`
(the request reaches the peer, which does the work, but its answer is lost: the connection is
closed instead). The upstream can change while it runs (a restarted process).
"""

from __future__ import annotations

import http.client
import select
import socket
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field

from .server import NO_ANSWER, Answer, LoopbackServer, Request

_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"}
# faults without an answer (a status <= 0)
DROP = 0  # close the connection without answering
HANG = -1  # accept, send nothing for `hang_seconds`, then close: the client times out first
LOSE = -2  # forward (the peer does the work), then close instead of passing the answer on


@dataclass
class Fault:
    status: int  # an HTTP status, or DROP / HANG / LOSE
    path_contains: str = ""
    method: str = ""


@dataclass(frozen=True)
class JournalEntry:
    """One request that passed (kept when the proxy's `journal` is on): what a cost count needs."""

    method: str
    target: str  # path and query
    status: int
    seconds: float  # request start -> answer (for a push: how long the function ran)
    request_bytes: int
    body: bytes = b""  # the request's body, when `journal_bodies` is on
    answer: bytes = b""  # the answer's body, likewise
    at: float = 0.0  # time.monotonic() when the request arrived
    waited: float = 0.0  # of `seconds`, how long it queued for a `serial` proxy's one upstream


@dataclass
class FaultProxy:
    upstream: str  # host:port
    name: str = "proxy"
    faults: deque[Fault] = field(default_factory=deque)
    requests: Counter[str] = field(default_factory=Counter)  # by status answered
    injected: int = 0
    failing: int | None = None  # answer every request with this status until set back to None
    hang_seconds: float = 5.0  # how long a HANG holds the connection before closing it
    hung_up: int = 0  # HANGs the client gave up on (closed its end) before `hang_seconds`
    record: bool = False  # keep request bodies (to check what reached the peer)
    # one request at a time: local-bigquery's DuckLake catalog fails concurrent commits ("Failed
    # to commit DuckLake transaction"), which real BigQuery does not
    serial: bool = False
    forwarding: threading.Lock = field(default_factory=threading.Lock)
    bodies: list[bytes] = field(default_factory=list)
    # every request with its method, path, status and time (None: not kept)
    journal: list[JournalEntry] | None = None
    journal_bodies: bool = False  # keep the request's and the answer's bodies in it too
    lock: threading.Lock = field(default_factory=threading.Lock)
    _server: LoopbackServer | None = None
    _waits: threading.local = field(default_factory=threading.local)

    @property
    def port(self) -> int:
        return self._server.port if self._server is not None else 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def fail_next(self, status: int, times: int = 1, *, path: str = "", method: str = "") -> None:
        with self.lock:
            for _ in range(times):
                self.faults.append(Fault(status, path, method))

    def pending_faults(self) -> int:
        with self.lock:
            return len(self.faults)

    def total(self) -> int:
        with self.lock:
            return sum(self.requests.values())

    def _take(self, method: str, path: str) -> Fault | None:
        with self.lock:
            if self.failing is not None:
                self.injected += 1
                return Fault(self.failing)
            for fault in self.faults:
                if fault.path_contains in path and fault.method in ("", method):
                    self.faults.remove(fault)
                    self.injected += 1
                    return fault
        return None

    def _count(self, status: int) -> None:
        with self.lock:
            self.requests[str(status)] += 1

    def start(self) -> FaultProxy:
        self._server = LoopbackServer(self._forward, keep_alive=True, quiet=True, record=False)
        self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    def _forward(self, request: Request) -> Answer:
        started = time.monotonic()
        self._waits.seconds = 0.0
        answer = self._answer(request)
        if self.journal is not None:
            entry = JournalEntry(
                request.method,
                request.target,
                answer.status,
                time.monotonic() - started,
                len(request.body or b""),
                (request.body or b"") if self.journal_bodies else b"",
                answer.body if self.journal_bodies else b"",
                started,
                self._waits.seconds,
            )
            with self.lock:
                self.journal.append(entry)
        return answer

    def _answer(self, request: Request) -> Answer:
        if self.record and request.body:
            with self.lock:
                self.bodies.append(request.body)
        fault = self._take(request.method, request.target)
        if fault is not None and fault.status != LOSE:
            self._count(fault.status)
            if fault.status == HANG and _client_hangs_up(request.connection, self.hang_seconds):
                with self.lock:
                    self.hung_up += 1
            if fault.status in (DROP, HANG):
                return NO_ANSWER
            data = b'{"error": {"code": %d, "message": "injected fault"}}' % fault.status
            return Answer(fault.status, data)
        answer = self._upstream(request)
        if fault is not None:  # LOSE: the peer has answered; the client never hears it
            self._count(LOSE)
            return NO_ANSWER
        self._count(answer.status)
        return answer

    def _upstream(self, request: Request) -> Answer:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        host, port = self.upstream.rsplit(":", 1)
        connection = http.client.HTTPConnection(host, int(port), timeout=600)
        body = request.body or None
        try:
            if self.serial:
                queued = time.monotonic()
                with self.forwarding:
                    self._waits.seconds = time.monotonic() - queued
                    connection.request(request.method, request.target, body=body, headers=headers)
                    answer = connection.getresponse()
                    data = answer.read()
            else:
                connection.request(request.method, request.target, body=body, headers=headers)
                answer = connection.getresponse()
                data = answer.read()
            passed = tuple(
                (k, v)
                for k, v in answer.getheaders()
                if k.lower() not in _HOP and k.lower() != "content-length"
            )
            return Answer(answer.status, data, None, passed)
        except OSError:  # the peer is down (a killed process): Pub/Sub sees a failed push
            return Answer(502, b"upstream unavailable", None)
        finally:
            connection.close()


def _client_hangs_up(client: socket.socket | None, seconds: float) -> bool:
    """Send nothing for `seconds`; True as soon as the client closes its end (its timeout),
    False if it was still waiting when the time was up."""
    assert client is not None
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select([client], [], [], left)
        if not readable:
            continue
        try:
            if not client.recv(1, socket.MSG_PEEK):
                return True
        except OSError:  # reset by the client
            return True
        time.sleep(max(0.0, deadline - time.monotonic()))  # sent more: hold on anyway
        return False
    return False
