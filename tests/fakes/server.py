"""The one loopback HTTP server the fakes stand on.

A `LoopbackServer` listens on 127.0.0.1 (a free port) in a daemon thread. Each request becomes a
`Request`, the fake's `answer` function turns it into an `Answer`, the pair is recorded as an
`Exchange`, then the answer is sent: a fake is a function from request to answer plus its state,
with none of `http.server`'s handler plumbing. `LoopbackFake` is the base class of the fakes.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")


@dataclass(frozen=True)
class Request:
    method: str
    target: str  # the path as sent, with its query
    headers: dict[str, str]  # names as the client wrote them
    body: bytes
    at: float  # time.monotonic() when it arrived
    # the client's connection, for a fake that watches it (FaultProxy's HANG)
    connection: socket.socket | None = field(default=None, repr=False, compare=False)

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.target).query)

    def json(self) -> Any:
        """The body as JSON; None when there is none."""
        return json.loads(self.body) if self.body.strip() else None


@dataclass(frozen=True)
class Answer:
    status: int  # 0: no answer at all, the connection is closed (see NO_ANSWER)
    body: bytes = b""
    content_type: str | None = "application/json"
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")


NO_ANSWER = Answer(0)


def json_answer(
    status: int, document: Any, content_type: str = "application/json", **headers: str
) -> Answer:
    return Answer(status, json.dumps(document).encode(), content_type, tuple(headers.items()))


@dataclass(frozen=True)
class Exchange:
    request: Request
    answer: Answer


class LoopbackServer:
    """Serve `handle` on 127.0.0.1 until `stop()`; `exchanges` keeps what was asked and answered.

    `methods`: the HTTP methods served (others get 501, as `http.server` answers them);
    `keep_alive`: HTTP/1.1 persistent connections; `quiet`: no traceback when a client goes away
    mid-request; `record`: keep the exchanges (a proxy carrying megabytes need not)."""

    def __init__(
        self,
        handle: Callable[[Request], Answer],
        *,
        methods: tuple[str, ...] = METHODS,
        keep_alive: bool = False,
        quiet: bool = False,
        record: bool = True,
    ) -> None:
        self.exchanges: list[Exchange] = []
        self.lock = threading.Lock()
        self._record = record
        handler = _handler(self, handle, methods, keep_alive)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        if quiet:
            self._server.handle_error = lambda request, address: None  # type: ignore[method-assign,assignment]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def recorded(self) -> list[Exchange]:
        with self.lock:
            return list(self.exchanges)

    def clear(self) -> None:
        with self.lock:
            self.exchanges.clear()

    def _keep(self, exchange: Exchange) -> None:
        if self._record:
            with self.lock:
                self.exchanges.append(exchange)


def _handler(
    server: LoopbackServer,
    handle: Callable[[Request], Answer],
    methods: tuple[str, ...],
    keep_alive: bool,
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep pytest's output clean

        def _serve(self) -> None:
            arrived = time.monotonic()
            if self.command not in methods:
                self.send_error(501, f"Unsupported method ({self.command!r})")
                return
            length = int(self.headers.get("Content-Length") or 0)
            request = Request(
                self.command,
                self.path,
                dict(self.headers.items()),
                self.rfile.read(length) if length else b"",
                arrived,
                self.connection,
            )
            answer = handle(request)
            server._keep(Exchange(request, answer))
            if answer.status <= 0:
                self.close_connection = True
                return
            try:
                self.send_response(answer.status)
                if answer.content_type is not None:
                    self.send_header("Content-Type", answer.content_type)
                self.send_header("Content-Length", str(len(answer.body)))
                for name, value in answer.headers:
                    self.send_header(name, value)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(answer.body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting (its timeout): nobody to answer

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

    return Handler


class LoopbackFake:
    """Base of the fakes: subclasses implement `answer`; `start()` serves it on loopback."""

    methods: tuple[str, ...] = METHODS
    server: LoopbackServer

    def answer(self, request: Request) -> Answer:
        raise NotImplementedError

    def start(self) -> Self:
        self.server = LoopbackServer(self.answer, methods=self.methods).start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return self.server.url
