"""structlog set-up, in one place: Cloud Logging JSON in the cloud, key=value on a terminal.

Handlers bind `run_id` with `bind_run`; every line inside the block carries it, as a field
locally and as the `logging.googleapis.com/labels` label that Cloud Logging indexes, and no line
after the block does. The standard library's loggers (slack_sdk, google-*, functions-framework,
urllib3, ...) go through the same processors, so their lines have the same shape, the run id of
the message being handled, and no secret this process holds.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any, TextIO

import structlog

_SEVERITY = {
    "debug": "DEBUG",
    "info": "INFO",
    "warning": "WARNING",
    "error": "ERROR",
    "critical": "CRITICAL",
    "exception": "ERROR",
}

# Secrets this process holds (every `mlrelay.config.env.Secret` adds its value), and the shapes
# of credentials a library may print without us knowing the value: Slack tokens and webhook
# paths, bearer tokens, OAuth access tokens in URLs or JSON.
_KNOWN_SECRETS: set[str] = set()
_CREDENTIAL_SHAPES = re.compile(
    r"xox[abposre]-[A-Za-z0-9-]+"
    r"|(?<=hooks\.slack\.com/)services/[A-Za-z0-9/_-]+"
    r"|(?<=[Bb]earer )[A-Za-z0-9._~+/=-]+"
    r"|(?<=access_token=)[^&\s\"']+"
    r"|(?<=\"access_token\": \")[^\"]+"
)
REDACTED = "[redacted]"
_OWN_HANDLER = "_mlrelay_handler"


def remember_secret(value: str) -> None:
    """Never print `value` in a log line of this process (short values would scrub too much)."""
    if len(value) >= 8:
        _KNOWN_SECRETS.add(value)


def redact(text: str) -> str:
    for secret in sorted(_KNOWN_SECRETS, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return _CREDENTIAL_SHAPES.sub(REDACTED, text)


def _redact_secrets(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in event.items():
        if key.startswith("_"):  # a standard-library record being formatted, not printed
            continue
        if isinstance(value, str):
            event[key] = redact(value)
        elif not isinstance(value, int | float | bool | type(None)):
            text = str(value)
            cleaned = redact(text)
            if cleaned != text:
                event[key] = cleaned
    return event


def _cloud_logging_shape(
    _: Any, method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    event["severity"] = _SEVERITY.get(str(event.get("level", method)).lower(), "DEFAULT")
    event["message"] = event.pop("event", "")
    labels = {k: str(event[k]) for k in ("run_id", "pipeline", "service") if k in event}
    if labels:
        event["logging.googleapis.com/labels"] = labels
    return event


class _CurrentStderr:
    """Writes to whatever sys.stderr is now (a live terminal display may swap it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(
    fmt: str = "console", level: str = "INFO", stream: TextIO | None = None
) -> None:
    out: Any = stream or _CurrentStderr()
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(
            fmt="iso", utc=True, key="time" if fmt == "json" else "timestamp"
        ),
        structlog.processors.format_exc_info,
        _redact_secrets,
    ]
    renderer: list[Any]
    if fmt == "json":
        renderer = [_cloud_logging_shape, structlog.processors.JSONRenderer()]
    else:
        renderer = [
            structlog.processors.KeyValueRenderer(
                key_order=["timestamp", "level", "event", "run_id"], drop_missing=True
            )
        ]
    structlog.configure(
        processors=[*shared, *renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    _route_standard_logging(out, level, [structlog.stdlib.add_logger_name, *shared], renderer)


def _route_standard_logging(
    out: Any, level: str, pre_chain: list[Any], renderer: list[Any]
) -> None:
    """The root logger writes through the same processors (one handler of ours, replaced on
    every call; handlers others installed, such as pytest's, are left alone)."""
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=pre_chain,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *renderer],
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    setattr(handler, _OWN_HANDLER, True)
    root = logging.getLogger()
    # google-api-core cuts the "google" logger off from the root the first time a client sets up
    # its logging (client_logging.initialize_logging), unless that logger is configured already:
    # so it gets our handler itself, and does not propagate (no line twice).
    google = logging.getLogger("google")
    for logger in (root, google):
        for old in [h for h in logger.handlers if getattr(h, _OWN_HANDLER, False)]:
            logger.removeHandler(old)
        logger.addHandler(handler)
    google.propagate = False
    root.setLevel(logging.getLevelName(level))


@contextmanager
def bind_run(**values: Any) -> Iterator[None]:
    """Attach run_id (and friends) to every log line inside the block, and to none after it."""
    with structlog.contextvars.bound_contextvars(**values):
        yield
