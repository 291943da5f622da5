"""`mlrelay runs list --pipeline P` and `mlrelay runs compare A B`: a pipeline's finished runs
from the history (`history/<pipeline>/<run_id>.json`, written by the notifier) and the deltas
between two of them, the same the run's card shows."""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console
from rich.table import Table

from mlrelay.comparison import compare, describe_comparison, shown
from mlrelay.history import HISTORY, RunSummary, list_summaries, read_summary
from mlrelay.ports.protocols import ObjectStore
from mlrelay_tools.cli.environment import settings_from_env
from mlrelay_tools.cli.json_output import echo_json

KEY_METRICS = 3  # metrics shown in the table (all of them with --json)


def history_store() -> ObjectStore:
    from mlrelay.ports.container import Ports

    return Ports(settings_from_env()).store


def history_row(summary: RunSummary) -> dict[str, Any]:
    return {
        "run_id": summary.run_id,
        "pipeline": summary.pipeline,
        "status": summary.status,
        "schedule": summary.schedule,
        "logical_time": summary.logical_time.isoformat() if summary.logical_time else None,
        "duration_seconds": summary.duration_seconds,
        "rows": summary.rows,
        "metrics": summary.metrics,
        "baseline_run_id": summary.baseline_run_id,
        "regressions": summary.regressions,
        "quality_warnings": summary.quality_warnings,
    }


def list_history(pipeline: str, as_json: bool) -> None:
    """The pipeline's finished runs, oldest first."""
    summaries = list_summaries(history_store(), pipeline)
    rows = [history_row(s) for s in summaries]
    if as_json:
        echo_json(rows)
        return
    table = Table("run id", "status", "logical time", "duration (s)", "rows", "metrics")
    for row in rows:
        metrics = list(row["metrics"].items())[:KEY_METRICS]
        table.add_row(
            row["run_id"],
            row["status"],
            str(row["logical_time"] or ""),
            shown(row["duration_seconds"]),
            shown(row["rows"]),
            " ".join(f"{k}={shown(v)}" for k, v in metrics),
        )
    Console(width=200).print(table)
    click.echo(f"{len(rows)} finished run(s) of {pipeline}")


def find_summary(store: ObjectStore, run_id: str, pipeline: str | None) -> RunSummary:
    if pipeline is not None:
        found = read_summary(store, pipeline, run_id)
    else:
        key = next((k for k in store.list(HISTORY) if k.endswith(f"/{run_id}.json")), None)
        raw = store.read(key) if key else None
        found = RunSummary.from_json(raw) if raw is not None else None
    if found is None:
        raise click.ClickException(
            f"run {run_id!r} has no summary in the history (only finished runs do); "
            "see `mlrelay runs list --pipeline P`"
        )
    return found


@click.command("compare")
@click.argument("baseline_id", metavar="A")
@click.argument("run_id", metavar="B")
@click.option("--pipeline", help="The runs' pipeline (default: looked up in the history).")
@click.option(
    "--json", "as_json", is_flag=True, help="Print the comparison as one JSON object on stdout."
)
def runs_compare(baseline_id: str, run_id: str, pipeline: str | None, as_json: bool) -> None:
    """Run B against run A (its baseline): metric deltas, rows, duration and the schema diff,
    as the run's card shows them against the last good run."""
    import json

    store = history_store()
    baseline = find_summary(store, baseline_id, pipeline)
    current = find_summary(store, run_id, pipeline or baseline.pipeline)
    comparison = compare(current, baseline)
    if as_json:
        body = {
            **comparison.to_dict(),
            "status": current.status,
            "regressions": current.regressions,
        }
        click.echo(json.dumps(body, indent=2, ensure_ascii=False))
        return
    click.echo(f"{current.run_id} ({current.status}) vs {baseline.run_id} ({baseline.status})")
    for line in describe_comparison(comparison):
        click.echo(f"  {line}")
