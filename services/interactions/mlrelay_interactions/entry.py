"""The interactions function's HTTP handler (main.py registers it with functions-framework):
read the raw body (bounded), answer it (`door.answer_slack_request`), never answer 500."""

from __future__ import annotations

import json
import time
from typing import IO, Any, Protocol

import structlog

from mlrelay.errors import ConfigurationError
from mlrelay.ports.container import current_ports
from mlrelay.stage.commands import CommandNotPublished
from mlrelay_interactions.door import Reply, answer_slack_request

log = structlog.get_logger()


class HttpRequest(Protocol):
    """What the handler reads of functions-framework's (Flask's) request."""

    @property
    def method(self) -> str: ...
    @property
    def headers(self) -> Any: ...
    @property
    def content_length(self) -> int | None: ...
    @property
    def stream(self) -> IO[bytes]: ...


def on_slack_request(request: HttpRequest) -> tuple[str, int, dict[str, str]]:
    """Slack's interactivity and slash-command requests -> one command, one ephemeral answer."""
    try:
        reply = _answer(request)
    except ConfigurationError as exc:
        _report_once(exc)
        reply = Reply(503, "not configured")
    except CommandNotPublished as exc:
        log.warning("command_not_published", error=str(exc)[:200])
        reply = Reply(503, "try again")
    except Exception:  # the public door answers; the traceback goes to the log, not the caller
        log.exception("slack_request_failed")
        reply = Reply(503, "try again")
    if isinstance(reply.body, dict):
        return json.dumps(reply.body), reply.status, {"Content-Type": "application/json"}
    return reply.body, reply.status, {"Content-Type": "text/plain; charset=utf-8"}


_reported: set[str] = set()


def _report_once(exc: ConfigurationError) -> None:
    """One ERROR line per distinct set-up problem per process, then INFO."""
    if str(exc) in _reported:
        log.info("refused_until_configuration_fixed", field=exc.field)
        return
    _reported.add(str(exc))
    log.error("configuration_error", field=exc.field, problem=exc.problem, fix=exc.fix)


def _answer(request: HttpRequest) -> Reply:
    if request.method != "POST":
        return Reply(405, "POST only")
    ports = current_ports()
    limit = ports.settings.interactions.max_body_bytes
    if (request.content_length or 0) > limit:
        return Reply(413, "too large")
    body = request.stream.read(limit + 1)
    if len(body) > limit:
        return Reply(413, "too large")
    headers = {str(k).lower(): str(v) for k, v in request.headers.items()}
    return answer_slack_request(ports, headers, body, time.time())
