"""infra/ as python-hcl2 reads it, for the static checks of tests/unit/infra (terraform itself
cannot reach its provider registry here)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import hcl2

from tests.helpers import REPO

INFRA = REPO / "infra"
MODULE = INFRA / "modules" / "mlrelay"
TF_FILES = sorted(INFRA.rglob("*.tf"))


def unquote(value: Any) -> Any:
    """python-hcl2 keeps the quotes of string literals: drop them for comparison."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    if isinstance(value, dict):
        return {unquote(k): unquote(v) for k, v in value.items() if k != "__is_block__"}
    if isinstance(value, list):
        return [unquote(v) for v in value]
    return value


def load_tf(path: Path) -> dict[str, Any]:
    with path.open() as handle:
        return unquote(hcl2.load(handle))  # type: ignore[no-any-return]


@functools.cache
def module_locals() -> dict[str, Any]:
    return load_tf(MODULE / "locals.tf")["locals"][0]  # type: ignore[no-any-return]


@functools.cache
def module_variables() -> dict[str, Any]:
    variables = {}
    for block in load_tf(MODULE / "variables.tf")["variable"]:
        variables.update(block)
    return variables


@functools.cache
def module_resources() -> list[tuple[str, str, dict[str, Any]]]:
    """(type, name, body) of every resource in the module."""
    found = []
    for path in sorted(MODULE.glob("*.tf")):
        for block in load_tf(path).get("resource", []):
            for kind, named in block.items():
                found += [(kind, name, body) for name, body in named.items()]
    return found
