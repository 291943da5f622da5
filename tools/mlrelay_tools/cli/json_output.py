"""`--json` on the listing commands: one JSON array of objects on stdout, nothing else there.

Each listing builds its rows as plain dicts with the same keys for every row (absent values are
`null`), prints them here with `--json`, or as a table without it. Logs go to stderr either way.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import click

JSON_OPTION = click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print a JSON array of objects on stdout instead of a table (for scripts).",
)


def echo_json(rows: Sequence[dict[str, Any]]) -> None:
    click.echo(json.dumps(list(rows), indent=2, ensure_ascii=False))
