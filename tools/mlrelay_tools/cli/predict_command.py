"""`mlrelay predict ENDPOINT ROW_JSON`: the embedded endpoint's answer to each row, from the
model the split picks for it (the code: mlrelay_tools.serving)."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import click

from mlrelay.errors import ExplainedError
from mlrelay_tools.cli.environment import settings_from_env


@click.command("predict")
@click.argument("endpoint")
@click.argument("row_json")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print one JSON array of the answers instead of one JSON object per line.",
)
@click.option("--seed", type=int, help="Seed the per-request pick (the same picks each time).")
def predict(endpoint: str, row_json: str, as_json: bool, seed: int | None) -> None:
    """Answer ROW_JSON (a JSON object of feature values, or a list of them; `@FILE` or `-`
    reads it from a file or stdin) from ENDPOINT, the embedded endpoint of a pipeline's
    `promotion:` under $MLRELAY_HOME/endpoints/.

    Each row goes to one deployed model, drawn at random by the endpoint's traffic split (as
    Vertex AI routes requests); each answer is {"prediction", "deployed_model_id", "run_id"}."""
    from mlrelay_tools.serving import load_endpoint, parse_rows
    from mlrelay_tools.serving import predict as answer

    home = settings_from_env().home
    try:
        rows = parse_rows(_read(row_json))
        picks = random.Random(seed)  # noqa: S311 - traffic routing, not a secret
        answers = answer(load_endpoint(home, endpoint), rows, picks)
    except ExplainedError as error:
        raise click.ClickException(str(error)) from None
    if as_json:
        click.echo(json.dumps(answers, indent=2, ensure_ascii=False))
        return
    for one in answers:
        click.echo(json.dumps(one, ensure_ascii=False))


def _read(row_json: str) -> str:
    if row_json == "-":
        return sys.stdin.read()
    if row_json.startswith("@"):
        try:
            return Path(row_json[1:]).read_text(encoding="utf-8")
        except OSError as error:
            raise click.ClickException(
                f"ROW_JSON: cannot read {row_json[1:]} ({error.strerror}) (give an existing file)"
            ) from None
    return row_json
