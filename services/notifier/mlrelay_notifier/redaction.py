"""Slack secrets (token, webhook URLs) never reach a log line: slack_sdk's own loggers get a
filter that scrubs every secret this process holds."""

from __future__ import annotations

import logging
from collections.abc import Iterable


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return text


# every Slack secret this process holds: any of them is scrubbed from any slack_sdk log line
KNOWN_SECRETS: set[str] = set()


class RedactSecrets(logging.Filter):
    """Scrub secrets from log records (slack_sdk logs request URLs when it retries)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage(), sorted(KNOWN_SECRETS, key=len, reverse=True))
        record.args = None
        return True


def sdk_logger(name: str, secrets: list[str]) -> logging.Logger:
    KNOWN_SECRETS.update(s for s in secrets if s)
    logger = logging.getLogger(f"mlrelay.slack_sdk.{name}")
    logger.filters = [RedactSecrets()]
    return logger
