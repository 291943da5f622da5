"""`--param key=value` parsing: values read as JSON scalars (200, 0.5, true), else as text."""

from __future__ import annotations

import json

import click

from mlrelay.contracts import Scalar


def parse_params(items: tuple[str, ...]) -> dict[str, Scalar]:
    parsed: dict[str, Scalar] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(
                f"{item!r}: expected key=value, e.g. n_estimators=200", param_hint="--param"
            )
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        if not isinstance(value, bool | int | float | str):
            value = raw
        parsed[key.strip()] = value
    return parsed
