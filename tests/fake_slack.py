"""A loopback HTTP server that plays Slack for the real `slack_sdk` clients.

It serves incoming webhooks (`POST /services/...`) and the Web API methods the notifier uses
(`chat.postMessage`, `chat.update`), checks the bot token, rejects blocks Slack would reject
(`invalid_blocks`), keeps the channel's messages and threads, and records every request with the
time it arrived. Tests can queue canned answers (429 with Retry-After, 500, an API error) that the
next matching requests get instead.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# Block Kit types the notifier may use, and Slack's length limits that matter to it
BLOCK_TYPES = {"header", "section", "context", "actions", "divider", "rich_text", "image"}
MAX_SECTION_TEXT = 3000
MAX_HEADER_TEXT = 150
MAX_BLOCKS = 50


@dataclass(frozen=True)
class Recorded:
    at: float  # time.monotonic() when the request arrived
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    status: int  # what the fake answered
    ok: bool  # accepted: a webhook's "ok", or the Web API's {"ok": true}

    @property
    def method(self) -> str:
        """Web API method (`chat.postMessage`) or `webhook`."""
        return self.path.removeprefix("/api/") if self.path.startswith("/api/") else "webhook"


@dataclass
class Canned:
    status: int
    body: str
    headers: dict[str, str] = field(default_factory=dict)
    path_prefix: str = "/"


@dataclass
class Message:
    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    attachments: list[dict[str, Any]]
    thread_ts: str | None = None
    broadcast: bool = False
    updates: int = 0


def block_problem(blocks: Any) -> str | None:
    """What Slack would reject in these blocks (a small subset of its checks), or None."""
    if blocks is None:
        return None
    if not isinstance(blocks, list) or len(blocks) > MAX_BLOCKS:
        return "blocks must be a list of at most 50"
    for block in blocks:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind not in BLOCK_TYPES:
            return f"unknown block type {kind!r}"
        text = block.get("text")
        if kind == "header" and (not text or len(text.get("text", "")) > MAX_HEADER_TEXT):
            return "header text missing or too long"
        if kind == "section":
            texts = [text] if text else []
            texts += block.get("fields", [])
            if not texts or any(len(t.get("text", "")) > MAX_SECTION_TEXT for t in texts):
                return "section text missing or too long"
    return None


class FakeSlack:
    def __init__(self, token: str = "test-bot-token") -> None:  # noqa: S107
        self.token = token
        self.requests: list[Recorded] = []
        self.canned: deque[Canned] = deque()
        self.webhook_paths: set[str] = set()
        self.channel_ids: dict[str, str] = {}
        self.messages: list[Message] = []
        self._lock = threading.Lock()
        self._ts = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # --- set-up -------------------------------------------------------------------------------
    def start(self) -> FakeSlack:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def base(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def api_url(self) -> str:
        return f"{self.base}/api/"

    def add_webhook(self, name: str) -> str:
        path = f"/services/T0000/B{name.upper()}/secret{name}XYZ"
        self.webhook_paths.add(path)
        return self.base + path

    def add_channel(self, name: str) -> str:
        channel_id = "C" + format(abs(hash(name)) % 10**9, "09d")
        self.channel_ids[name] = channel_id
        self.channel_ids[channel_id] = channel_id
        return channel_id

    def queue(
        self,
        status: int,
        body: str | dict[str, Any] = "",
        *,
        times: int = 1,
        retry_after: int | None = None,
        path_prefix: str = "/",
    ) -> None:
        """The next `times` requests under `path_prefix` get this answer instead."""
        text = body if isinstance(body, str) else json.dumps(body)
        headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
        for _ in range(times):
            self.canned.append(Canned(status, text, headers, path_prefix))

    # --- reading what happened ---------------------------------------------------------------
    def calls(self, method: str | None = None) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if method is None or r.method == method]

    def delivered(self, method: str | None = None) -> list[Recorded]:
        return [r for r in self.calls(method) if r.ok]

    def channel_messages(self, channel: str) -> list[Message]:
        channel_id = self.channel_ids.get(channel, channel)
        return [m for m in self.messages if m.channel == channel_id]

    # --- serving -----------------------------------------------------------------------------
    def _next_ts(self) -> str:
        self._ts += 1
        return f"1764000000.{self._ts:06d}"

    def _take_canned(self, path: str) -> Canned | None:
        for canned in list(self.canned):
            if path.startswith(canned.path_prefix):
                self.canned.remove(canned)
                return canned
        return None

    def _answer(
        self, path: str, headers: dict[str, str], body: dict[str, Any]
    ) -> tuple[int, str, dict[str, str]]:
        canned = self._take_canned(path)
        if canned is not None:
            return canned.status, canned.body, canned.headers
        if path.startswith("/services/"):
            if path not in self.webhook_paths:
                return 404, "no_service", {}
            problem = block_problem(body.get("blocks"))
            if problem is None:
                for attachment in body.get("attachments") or []:
                    problem = problem or block_problem(attachment.get("blocks"))
            if problem:
                return 400, "invalid_blocks", {}
            if not body.get("text") and not body.get("blocks"):
                return 400, "no_text", {}
            self.messages.append(
                Message(
                    "webhook:" + path,
                    self._next_ts(),
                    body.get("text", ""),
                    body.get("blocks") or [],
                    body.get("attachments") or [],
                )
            )
            return 200, "ok", {}
        if path.startswith("/api/"):
            return 200, json.dumps(self._api(path.removeprefix("/api/"), headers, body)), {}
        return 404, "not found", {}

    def _api(self, method: str, headers: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        if headers.get("authorization") != f"Bearer {self.token}":
            return {"ok": False, "error": "invalid_auth"}
        if method not in ("chat.postMessage", "chat.update"):
            return {"ok": False, "error": "unknown_method"}
        channel = self.channel_ids.get(str(body.get("channel")))
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        problem = block_problem(body.get("blocks"))
        for attachment in body.get("attachments") or []:
            problem = problem or block_problem(attachment.get("blocks"))
        if problem:
            return {"ok": False, "error": "invalid_blocks", "errors": [problem]}
        if method == "chat.postMessage":
            message = Message(
                channel,
                self._next_ts(),
                body.get("text", ""),
                body.get("blocks") or [],
                body.get("attachments") or [],
                thread_ts=body.get("thread_ts"),
                broadcast=bool(body.get("reply_broadcast")),
            )
            self.messages.append(message)
            return {"ok": True, "channel": channel, "ts": message.ts}
        for message in self.messages:
            if message.channel == channel and message.ts == body.get("ts"):
                message.text = body.get("text", message.text)
                message.blocks = body.get("blocks") or []
                message.attachments = body.get("attachments") or []
                message.updates += 1
                return {"ok": True, "channel": channel, "ts": message.ts}
        return {"ok": False, "error": "message_not_found"}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                arrived = time.monotonic()
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode()
                try:
                    body = json.loads(raw) if raw else {}
                except json.JSONDecodeError:
                    body = {"_raw": raw}
                headers = {k.lower(): v for k, v in self.headers.items()}
                with fake._lock:
                    status, text, extra = fake._answer(self.path, headers, body)
                    ok = status == 200 and (text == "ok" or '"ok": true' in text)
                    fake.requests.append(Recorded(arrived, self.path, headers, body, status, ok))
                data = text.encode()
                self.send_response(status)
                is_json = text.startswith("{")
                self.send_header("Content-Type", "application/json" if is_json else "text/plain")
                self.send_header("Content-Length", str(len(data)))
                for name, value in extra.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep pytest output clean

        return Handler
