"""The notifier's errors: what a chat service can answer, and a notification that cannot go."""

from __future__ import annotations

from mlrelay.errors import PermanentError, TransientError


class ChatUnavailable(TransientError):
    """Slack could not be reached or asked us to come back later, after the client's retries."""


class ChatRefused(PermanentError):
    """Slack refused the message (bad blocks, unknown channel, revoked token or webhook)."""

    def __init__(self, field: str, problem: str, fix: str = "", *, code: str = "") -> None:
        super().__init__(field, problem, fix)
        self.code = code


class NotificationUndeliverable(TransientError):
    """Slack refused the message for good: let Pub/Sub dead-letter it (kept, not lost)."""
