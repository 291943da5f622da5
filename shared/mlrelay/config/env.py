"""Settings that document themselves: each field says its environment variable and what it does.

A settings section is a frozen dataclass whose fields are made with `setting(...)`; `read_section`
fills it from an environment mapping, and `docs/configuration.md` is rendered from the same
declarations (`mlrelay_tools.config_doc`), so a setting cannot be added without its description.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from mlrelay.errors import ConfigurationError
from mlrelay.logs import remember_secret

S = TypeVar("S")
Parse = Callable[[str, str], Any]  # (variable name, raw value) -> value, or ConfigurationError


@dataclass(frozen=True, repr=False)
class Secret:
    """A value that never prints: repr/str show only whether it is set."""

    value: str = ""

    def __bool__(self) -> bool:
        return bool(self.value)

    def __repr__(self) -> str:
        return "Secret(set)" if self.value else "Secret(unset)"

    __str__ = __repr__

    def __post_init__(self) -> None:
        remember_secret(self.value)


@dataclass(frozen=True)
class EnvVar:
    """How one field is read: its variable (a name, or a prefix of a family of names), what it
    does, and how its text becomes a value. `name=None`: set in code only (tests, the local
    runtime), never from the environment."""

    name: str | None
    doc: str
    parse: Parse
    prefix: bool = False  # `name` starts a family: SLACK_WEBHOOK_URL_<NAME>
    secret: bool = False


def setting(
    name: str | None,
    doc: str,
    *,
    default: Any = dataclasses.MISSING,
    default_factory: Callable[[], Any] | None = None,
    parse: Parse | None = None,
    prefix: bool = False,
    secret: bool = False,
) -> Any:
    """A dataclass field read from the environment variable `name`, documented by `doc`."""
    meta = {"env": EnvVar(name, doc, parse or text, prefix, secret)}
    if default_factory is not None:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def env_vars(section: type[Any]) -> list[tuple[dataclasses.Field[Any], EnvVar]]:
    """Every field of a section with its declaration (a field without one is a bug: see tests)."""
    return [(f, f.metadata["env"]) for f in dataclasses.fields(section) if "env" in f.metadata]


def read_section(section: type[S], env: Mapping[str, str], /, **given: Any) -> S:
    """The section with each field from its variable where it is set, else its default."""
    values: dict[str, Any] = {}
    for f, var in env_vars(section):
        if f.name in given or var.name is None:
            continue
        if var.prefix:
            family = {
                name.removeprefix(var.name).lower(): raw
                for name, raw in env.items()
                if name.startswith(var.name) and len(name) > len(var.name) and raw
            }
            if family:
                values[f.name] = {
                    key: var.parse(var.name + key.upper(), raw) for key, raw in family.items()
                }
        elif var.name in env:
            values[f.name] = var.parse(var.name, env[var.name])
    return section(**values, **given)


# --- parsers: (variable, raw text) -> value; every refusal names the variable and the fix -----


def text(name: str, raw: str) -> str:
    return raw


def path(name: str, raw: str) -> Path:
    return Path(raw)


def secret(name: str, raw: str) -> Secret:
    return Secret(raw)


def upper(name: str, raw: str) -> str:
    return raw.upper()


def choice(*allowed: str, lower: bool = False) -> Parse:
    def parse(name: str, raw: str) -> str:
        value = raw.lower() if lower else raw
        if value not in allowed:
            raise ConfigurationError(
                name, f"{raw!r} is not one of the choices", "use " + " or ".join(allowed)
            )
        return value

    return parse


def positive_int(example: int) -> Parse:
    def parse(name: str, raw: str) -> int:
        if not raw.isdigit() or int(raw) < 1:
            raise ConfigurationError(
                name, f"{raw!r} is not a positive integer", f"e.g. {name}={example}"
            )
        return int(raw)

    return parse


def seconds(example: float, *, zero: bool = False) -> Parse:
    """A number of seconds > 0 (>= 0 with `zero`)."""

    def parse(name: str, raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            value = float("nan")
        low_ok = value >= 0 if zero else value > 0
        if not (low_ok and value < float("inf")):
            bound = ">= 0" if zero else "> 0"
            raise ConfigurationError(
                name, f"{raw!r} is not a number of seconds {bound}", f"e.g. {name}={example}"
            )
        return value

    return parse


def name_map(name: str, raw: str) -> dict[str, str]:
    """A JSON object of names to names; empty text is an empty map."""
    if not raw.strip():
        return {}
    try:
        found = json.loads(raw)
    except ValueError:
        found = None
    if not isinstance(found, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in found.items()
    ):
        raise ConfigurationError(
            name,
            f"{raw[:80]!r} is not a JSON object of names to names",
            f'e.g. {name}=\'{{"my-subscription": "my-topic"}}\'',
        )
    return dict(found)
