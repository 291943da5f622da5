"""A loopback HTTP server that plays Slack for the real `slack_sdk` clients.

It serves incoming webhooks (`POST /services/...`), interaction response URLs
(`POST /actions/...`, what the interactions function answers a click on), and the Web API
methods mlrelay uses (`chat.postMessage`, `chat.update`, the lookups
`conversations.history`/`.replies`/`.list`, and `usergroups.users.list`),
checks the bot token, rejects blocks Slack would reject (`invalid_blocks`), keeps the channel's
messages, threads and message metadata, and records every request with the time it arrived.
Lookups answer like Slack: channel ids only, newest first (replies: the parent, then oldest
first), after `oldest`, at most `limit`, metadata only with `include_all_metadata`; a method in
`missing_scopes` is refused with `missing_scope`. Tests can queue canned answers (429 with
Retry-After, 500, an API error) that the next matching requests get instead.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from .server import Answer, Exchange, LoopbackFake, Request

# Block Kit types the notifier may use, and Slack's length limits that matter to it
BLOCK_TYPES = {"header", "section", "context", "actions", "divider", "rich_text", "image"}
MAX_SECTION_TEXT = 3000
MAX_HEADER_TEXT = 150
MAX_BLOCKS = 50
# an actions block: <= 25 elements; a button's text <= 75 chars, value <= 2000, action_id <= 255
MAX_ACTION_ELEMENTS = 25
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2000
MAX_ACTION_ID = 255


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
    metadata: dict[str, Any] | None = None

    def as_slack(self, with_metadata: bool) -> dict[str, Any]:
        """The message as conversations.history / .replies return it."""
        shown: dict[str, Any] = {"type": "message", "ts": self.ts, "text": self.text}
        if self.blocks:
            shown["blocks"] = self.blocks
        if self.thread_ts:
            shown["thread_ts"] = self.thread_ts
        if with_metadata and self.metadata:
            shown["metadata"] = self.metadata
        return shown


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
        if kind == "actions":
            problem = _actions_problem(block.get("elements"))
            if problem:
                return problem
    return None


def _actions_problem(elements: Any) -> str | None:
    if not isinstance(elements, list) or not 0 < len(elements) <= MAX_ACTION_ELEMENTS:
        return "an actions block needs 1 to 25 elements"
    ids = [e.get("action_id") for e in elements if isinstance(e, dict)]
    if len(ids) != len(set(ids)):
        return "action_id repeated in one actions block"
    for element in elements:
        if element.get("type") != "button":
            continue
        if len(element.get("text", {}).get("text", "")) > MAX_BUTTON_TEXT:
            return "button text over 75 characters"
        if len(element.get("value", "")) > MAX_BUTTON_VALUE:
            return "button value over 2000 characters"
        if len(element.get("action_id", "")) > MAX_ACTION_ID:
            return "action_id over 255 characters"
        confirm = element.get("confirm")
        if confirm is not None and not all(k in confirm for k in ("title", "text", "confirm")):
            return "confirm needs title, text and confirm"
    return None


class FakeSlack(LoopbackFake):
    methods = ("GET", "POST")

    def __init__(self, token: str = "test-bot-token") -> None:  # noqa: S107
        self.token = token
        self.canned: deque[Canned] = deque()
        self.webhook_paths: set[str] = set()
        self.channel_ids: dict[str, str] = {}
        self.messages: list[Message] = []
        self.missing_scopes: dict[str, str] = {}  # method -> the scope Slack says it needs
        self.user_groups: dict[str, list[str]] = {}  # usergroup id -> its members' user ids
        self.responses: list[dict[str, Any]] = []  # what was posted to a response URL
        self._lock = threading.Lock()
        self._ts = 0

    # --- set-up -------------------------------------------------------------------------------
    @property
    def base(self) -> str:
        return self.url

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

    def response_url(self, name: str = "1") -> str:
        """An interaction's response URL, as Slack puts it in a request (`/actions/...`)."""
        return f"{self.base}/actions/T0000/{name}/{'r' * 24}"

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
    @property
    def requests(self) -> list[Recorded]:
        return [_recorded(exchange) for exchange in self.server.recorded()]

    def calls(self, method: str | None = None) -> list[Recorded]:
        return [r for r in self.requests if method is None or r.method == method]

    def delivered(self, method: str | None = None) -> list[Recorded]:
        return [r for r in self.calls(method) if r.ok]

    def channel_messages(self, channel: str) -> list[Message]:
        channel_id = self.channel_ids.get(channel, channel)
        return [m for m in self.messages if m.channel == channel_id]

    # --- serving -----------------------------------------------------------------------------
    def _next_ts(self) -> str:
        self._ts += 1  # Slack's ts: epoch seconds (its clock) and a unique suffix
        return f"{int(time.time())}.{self._ts:06d}"

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
        if path.startswith("/actions/"):
            self.responses.append(body)
            return 200, "ok", {}
        if path.startswith("/api/"):
            return 200, json.dumps(self._api(path.removeprefix("/api/"), headers, body)), {}
        return 404, "not found", {}

    def _api(self, method: str, headers: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        if headers.get("authorization") != f"Bearer {self.token}":
            return {"ok": False, "error": "invalid_auth"}
        if method in self.missing_scopes:
            return {"ok": False, "error": "missing_scope", "needed": self.missing_scopes[method]}
        if method.startswith("conversations."):
            return self._lookup(method, body)
        if method == "usergroups.users.list":
            members = self.user_groups.get(str(body.get("usergroup")))
            if members is None:
                return {"ok": False, "error": "no_such_subteam"}
            return {"ok": True, "users": list(members)}
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
                metadata=body.get("metadata"),
            )
            self.messages.append(message)
            return {"ok": True, "channel": channel, "ts": message.ts}
        for message in self.messages:
            if message.channel == channel and message.ts == body.get("ts"):
                message.text = body.get("text", message.text)
                message.blocks = body.get("blocks") or []
                message.attachments = body.get("attachments") or []
                message.updates += 1
                if "metadata" in body:  # chat.update keeps the metadata unless it is given
                    message.metadata = body["metadata"] or None
                return {"ok": True, "channel": channel, "ts": message.ts}
        return {"ok": False, "error": "message_not_found"}

    def _lookup(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        if method == "conversations.list":
            names = sorted(n for n in self.channel_ids if n.startswith("#"))
            channels = [
                {"id": self.channel_ids[n], "name": n[1:], "is_channel": True} for n in names
            ]
            return {"ok": True, "channels": channels, "response_metadata": {"next_cursor": ""}}
        if method not in ("conversations.history", "conversations.replies"):
            return {"ok": False, "error": "unknown_method"}
        channel = str(params.get("channel"))
        if channel not in self.channel_ids.values():  # ids only, not names
            return {"ok": False, "error": "channel_not_found"}
        oldest = float(params.get("oldest") or 0)
        limit = int(params.get("limit") or 100)
        with_metadata = str(params.get("include_all_metadata")).lower() in ("1", "true")
        in_channel = [m for m in self.messages if m.channel == channel]
        if method == "conversations.history":  # top level (and broadcast replies), newest first
            shown = [m for m in in_channel if m.thread_ts is None or m.broadcast][::-1]
        else:
            parent = [m for m in in_channel if m.ts == params.get("ts")]
            if not parent:
                return {"ok": False, "error": "thread_not_found"}
            shown = parent + [m for m in in_channel if m.thread_ts == params.get("ts")]
        shown = [m for m in shown if float(m.ts) > oldest]
        return {
            "ok": True,
            "messages": [m.as_slack(with_metadata) for m in shown[:limit]],
            "has_more": len(shown) > limit,
        }

    def answer(self, request: Request) -> Answer:
        path, headers, body = _parsed(request)
        with self._lock:
            status, text, extra = self._answer(path, headers, body)
        if request.method == "GET":  # the Web API's read methods: always JSON
            return Answer(status, text.encode())
        kind = "application/json" if text.startswith("{") else "text/plain"
        return Answer(status, text.encode(), kind, tuple(extra.items()))


def _parsed(request: Request) -> tuple[str, dict[str, str], dict[str, Any]]:
    """The path, headers (lower case) and parameters of a call, as the fake reads them."""
    headers = {k.lower(): v for k, v in request.headers.items()}
    if request.method == "GET":  # the Web API's read methods: parameters in the query
        path, _, query = request.target.partition("?")
        return path, headers, {k: v[0] for k, v in parse_qs(query).items()}
    raw = request.body.decode()
    try:
        if "x-www-form-urlencoded" in (headers.get("content-type") or ""):
            # the Web API takes form posts too (slack_sdk's read methods)
            body = {k: v[0] for k, v in parse_qs(raw).items()}
        else:
            body = json.loads(raw) if raw else {}
    except json.JSONDecodeError:
        body = {"_raw": raw}
    return request.target, headers, body


def _recorded(exchange: Exchange) -> Recorded:
    request, answer = exchange.request, exchange.answer
    path, headers, body = _parsed(request)
    text = answer.text
    accepted = text == "ok" and request.method == "POST"
    ok = answer.status == 200 and (accepted or '"ok": true' in text)
    return Recorded(request.at, path, headers, body, answer.status, ok)
