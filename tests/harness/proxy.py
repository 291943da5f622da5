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
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

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
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0
    _server: ThreadingHTTPServer | None = None

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
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._server.handle_error = lambda request, address: None  # type: ignore[method-assign,assignment]
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def _handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            if proxy.record and body:
                with proxy.lock:
                    proxy.bodies.append(body)
            fault = proxy._take(self.command, self.path)
            if fault is not None and fault.status != LOSE:
                proxy._count(fault.status)
                if fault.status == HANG and self._client_hangs_up(proxy.hang_seconds):
                    with proxy.lock:
                        proxy.hung_up += 1
                if fault.status in (DROP, HANG):
                    self.close_connection = True
                    return
                data = b'{"error": {"code": %d, "message": "injected fault"}}' % fault.status
                self.send_response(fault.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
            host, port = proxy.upstream.rsplit(":", 1)
            connection = http.client.HTTPConnection(host, int(port), timeout=600)
            try:
                if proxy.serial:
                    with proxy.forwarding:
                        connection.request(self.command, self.path, body=body, headers=headers)
                        answer = connection.getresponse()
                        data = answer.read()
                else:
                    connection.request(self.command, self.path, body=body, headers=headers)
                    answer = connection.getresponse()
                    data = answer.read()
                status = answer.status
                answer_headers = [
                    (k, v)
                    for k, v in answer.getheaders()
                    if k.lower() not in _HOP and k.lower() != "content-length"
                ]
            except OSError:  # the peer is down (a killed process): Pub/Sub sees a failed push
                status, data, answer_headers = 502, b"upstream unavailable", []
            finally:
                connection.close()
            if fault is not None:  # LOSE: the peer has answered; the client never hears it
                proxy._count(LOSE)
                self.close_connection = True
                return
            proxy._count(status)
            self.send_response(status)
            for key, value in answer_headers:
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def _client_hangs_up(self, seconds: float) -> bool:
            """Send nothing for `seconds`; True as soon as the client closes its end (its
            timeout), False if it was still waiting when the time was up."""
            deadline = time.monotonic() + seconds
            while (left := deadline - time.monotonic()) > 0:
                readable, _, _ = select.select([self.connection], [], [], left)
                if not readable:
                    continue
                try:
                    if not self.connection.recv(1, socket.MSG_PEEK):
                        return True
                except OSError:  # reset by the client
                    return True
                time.sleep(max(0.0, deadline - time.monotonic()))  # sent more: hold on anyway
                return False
            return False

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _forward

    return Handler
