"""structlog set-up, in one place: Cloud Logging JSON in the cloud, key=value on a terminal.

Handlers bind `run_id` with `bind_run`; every line after that carries it, as a field locally and
as the `logging.googleapis.com/labels` label that Cloud Logging indexes.
"""

from __future__ import annotations

import logging
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


def _cloud_logging_shape(
    _: Any, method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    event["severity"] = _SEVERITY.get(method, "DEFAULT")
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


@contextmanager
def bind_run(**values: Any) -> Iterator[None]:
    """Attach run_id (and friends) to every log line inside the block."""
    with structlog.contextvars.bound_contextvars(**values):
        yield
