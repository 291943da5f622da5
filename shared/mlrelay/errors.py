"""Every error mlrelay raises on purpose, under one root.

```
MlrelayError
├── ExplainedError(field, problem, fix)   what a person reads names the field and the fix
│   ├── PermanentError                    this message can never succeed: reject and keep it
│   │   └── InvalidMessageError           it does not match its contract
│   └── ConfigurationError                our own set-up is wrong (environment, registry file,
│                                         packaging input): fixing it makes the message succeed
└── TransientError                        the outside world is briefly unavailable: redeliver
```
"""

from __future__ import annotations

from typing import Any


class MlrelayError(Exception):
    """The root: `except MlrelayError` catches every error mlrelay raises on purpose."""


class ExplainedError(MlrelayError):
    """An error a person reads: `field` names what is wrong, `problem` how, `fix` what to do."""

    def __init__(
        self, field: str, problem: str, fix: str = "", *, details: dict[str, Any] | None = None
    ) -> None:
        self.field = field
        self.problem = problem
        self.fix = fix
        self.details = details or {}  # what the `failed` event carries beside the text
        text = f"{field}: {problem}"
        if fix:
            text += f" ({fix})"
        super().__init__(text)


class PermanentError(ExplainedError):
    """Retrying this message cannot help: acknowledge, emit a `rejected`/`failed` event, keep it."""


class InvalidMessageError(PermanentError):
    """A message (or registry entry) does not match its contract."""


class ConfigurationError(ExplainedError):
    """mlrelay's own set-up is wrong (an environment variable, the registry file, a packaging
    input): the message is fine and succeeds once the set-up is fixed."""


class TransientError(MlrelayError):
    """The outside world is briefly unavailable (5xx, timeout, work in progress): raise to retry."""
