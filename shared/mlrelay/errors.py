"""The two kinds of failure every stage knows: permanent (reject) and transient (redeliver)."""

from __future__ import annotations


class PermanentError(Exception):
    """Retrying cannot help: acknowledge, emit a `rejected`/`failed` event, keep the message.

    `field` names what was wrong and `fix` says what to do, so the message a user reads is
    actionable.
    """

    def __init__(self, field: str, problem: str, fix: str = "") -> None:
        self.field = field
        self.problem = problem
        self.fix = fix
        text = f"{field}: {problem}"
        if fix:
            text += f" ({fix})"
        super().__init__(text)


class InvalidMessageError(PermanentError):
    """A message (or registry entry) does not match its contract."""


class TransientError(Exception):
    """The outside world is briefly unavailable (5xx, timeout, work in progress): raise to retry."""
