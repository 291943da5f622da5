"""The registry's optional `expected_schema`: a snapshot whose columns differ fails, by name."""

from __future__ import annotations

from mlrelay.errors import PermanentError
from mlrelay.ports.protocols import ColumnSchema


def _same(a: str, b: str) -> bool:
    return a.replace(" ", "").lower() == b.replace(" ", "").lower()


def check_expected_schema(expected: dict[str, str] | None, actual: list[ColumnSchema]) -> None:
    """Every expected column present with its type, and no other column; else PermanentError."""
    if not expected:
        return
    got = {column.name: column.type for column in actual}
    problems = []
    for name, kind in expected.items():
        if name not in got:
            problems.append(f"{name} is missing (expected {kind})")
        elif not _same(got[name], kind):
            problems.append(f"{name} is {got[name]}, expected {kind}")
    problems += [
        f"{name} ({kind}) is not expected" for name, kind in got.items() if name not in expected
    ]
    if problems:
        raise PermanentError(
            "expected_schema",
            "the snapshot's columns differ: " + "; ".join(problems),
            "fix the source, or update the pipeline's expected_schema in the registry",
        )
