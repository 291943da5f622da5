"""A pipeline's data expectations: checks on its snapshot, evaluated before any compute is spent.

Each item of `expectations:` holds exactly one check (`min_rows`, `max_row_change_pct`,
`not_null`, `unique`, `max_null_fraction`, `accepted_values`, `fresh_within`), an optional
`severity` (`error` stops the run, `warn` lets it go on) and an optional `name`.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from mlrelay.contracts import Scalar

ColumnName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
Check = Literal[
    "min_rows",
    "max_row_change_pct",
    "not_null",
    "unique",
    "max_null_fraction",
    "accepted_values",
    "fresh_within",
]
CHECKS: tuple[Check, ...] = get_args(Check)
_WINDOW = re.compile(r"^([1-9][0-9]*)([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_window(text: str) -> timedelta:
    """`30m`, `24h`, `7d`, `2w` -> a timedelta; anything else is a ValueError naming the form."""
    found = _WINDOW.match(text)
    if found is None:
        raise ValueError(
            f"window {text!r} is not a whole number and a unit, like 90s, 30m, 24h, 7d or 2w"
        )
    return timedelta(seconds=int(found.group(1)) * _UNIT_SECONDS[found.group(2)])


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NullFraction(_Part):
    column: ColumnName
    fraction: float = Field(ge=0.0, le=1.0)  # the largest share of nulls allowed


class AcceptedValues(_Part):
    column: ColumnName
    values: list[Scalar] = Field(min_length=1)  # nulls are left to `not_null`


class Freshness(_Part):
    column: ColumnName  # a TIMESTAMP, DATETIME (read as UTC) or DATE column
    window: str  # max(column) no older than this before the run's logical time

    @field_validator("window")
    @classmethod
    def _window(cls, value: str) -> str:
        parse_window(value)
        return value

    @property
    def delta(self) -> timedelta:
        return parse_window(self.window)


class ExpectationSpec(_Part):
    """One check on the snapshot, its severity and its name."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=120)] | None = None
    severity: Literal["error", "warn"] = "error"
    min_rows: Annotated[int, Field(ge=0)] | None = None
    max_row_change_pct: Annotated[float, Field(gt=0)] | None = None  # vs the previous snapshot
    not_null: Annotated[list[ColumnName], Field(min_length=1)] | None = None
    unique: Annotated[list[ColumnName], Field(min_length=1)] | None = None  # the combination
    max_null_fraction: NullFraction | None = None
    accepted_values: AcceptedValues | None = None
    fresh_within: Freshness | None = None

    @model_validator(mode="after")
    def _one_check(self) -> ExpectationSpec:
        given = [check for check in CHECKS if getattr(self, check) is not None]
        if len(given) != 1:
            found = ", ".join(given) or "none"
            raise ValueError(
                f"an expectation holds exactly one check (found: {found}); "
                f"write one of {', '.join(CHECKS)} per item"
            )
        return self

    @property
    def check(self) -> Check:
        return next(c for c in CHECKS if getattr(self, c) is not None)

    @property
    def columns(self) -> list[str]:
        """The columns the check reads (none for the row-count checks)."""
        if self.not_null is not None:
            return list(self.not_null)
        if self.unique is not None:
            return list(self.unique)
        for part in (self.max_null_fraction, self.accepted_values, self.fresh_within):
            if part is not None:
                return [part.column]
        return []

    @property
    def label(self) -> str:
        """The name, or one derived from the check: `not_null(species)`, `min_rows(1)`."""
        if self.name:
            return self.name
        if self.min_rows is not None:
            return f"min_rows({self.min_rows})"
        if self.max_row_change_pct is not None:
            return f"max_row_change_pct({self.max_row_change_pct:g})"
        if self.max_null_fraction is not None:
            part = self.max_null_fraction
            return f"max_null_fraction({part.column}, {part.fraction:g})"
        if self.fresh_within is not None:
            return f"fresh_within({self.fresh_within.column}, {self.fresh_within.window})"
        return f"{self.check}({', '.join(self.columns)})"
