"""`mlrelay`: run the flow locally, validate the registry, read the run ledger, publish runs."""

from __future__ import annotations

import json
import sys
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from mlrelay.config.settings import Settings
from mlrelay.errors import ExplainedError
from mlrelay.registry import RegistryError, load_registry, resolve_parameters
from mlrelay.stage.records import StageRecord
from mlrelay_tools.cli.environment import settings_from_env
from mlrelay_tools.cli.json_output import JSON_OPTION, echo_json
from mlrelay_tools.cli.params import parse_params
from mlrelay_tools.cli.verbosity import add_verbose_option


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mlrelay", message="mlrelay %(version)s")
def cli() -> None:
    """mlrelay: scheduled, reproducible retraining, announced in Slack.

    Every command takes -v (info logs) or -vv (debug logs) on stderr, and -h for its help."""


@cli.command()
@click.argument("pipeline")
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a parameter the registry allows (repeatable).",
)
@click.option("--dedup-key", help="Same key + same parameters = same run (no work redone).")
def run(pipeline: str, params: tuple[str, ...], dedup_key: str | None) -> None:
    """Run PIPELINE end to end on this machine: trigger -> snapshot -> deploy -> notify."""
    from mlrelay_tools.cli.run_flow import run_locally, summary_table

    settings = settings_from_env()
    console = Console()
    console.print(
        f"[bold]mlrelay run[/] {pipeline}  (embedded: DuckDB, local bucket "
        f"{settings.bucket_dir}, kfp.local)"
    )
    summary = run_locally(settings, pipeline, parse_params(params), dedup_key, console)
    console.print()
    console.print(summary_table(summary))
    # a run held by its approval gate did what was asked: it waits for `mlrelay approve`
    sys.exit(0 if summary.status in ("succeeded", "held") else 1)


@cli.command()
@click.argument("file", required=False, type=click.Path(path_type=Path))
def validate(file: Path | None) -> None:
    """Check the pipeline registry; every problem is listed with file, line and field."""
    path = file or settings_from_env().registry_path
    try:
        registry = load_registry(path)
    except RegistryError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        raise SystemExit(1) from None
    names = ", ".join(sorted(registry.pipelines))
    click.echo(f"{path}: OK, {len(registry.pipelines)} pipeline(s): {names}")


@cli.group()
def runs() -> None:
    """Read the run ledger (runs/<run_id>/<stage>.json in the bucket)."""


def _store(settings: Settings):  # type: ignore[no-untyped-def]
    from mlrelay.ports.container import Ports

    return Ports(settings).store


_LISTED_STAGES = ("trigger", "snapshot", "pipeline")


@runs.command("list")
@click.option(
    "--pipeline",
    help="One pipeline's finished runs from its history: status, logical time, duration, rows "
    "and key metrics.",
)
@JSON_OPTION
def runs_list(pipeline: str | None, as_json: bool) -> None:
    """Every run in the ledger, with the state of each stage (--pipeline: its finished runs)."""
    from mlrelay.stage.ledger import list_runs, read_run

    if pipeline is not None:
        from mlrelay_tools.cli.runs_commands import list_history

        list_history(pipeline, as_json)
        return

    store = _store(settings_from_env())
    rows: list[dict[str, Any]] = []
    for run_id in list_runs(store):
        records = read_run(store, run_id)
        trig = records.get("trigger")
        result = (trig.result or {}) if trig else {}
        rows.append(
            {
                "run_id": run_id,
                "pipeline": result.get("pipeline"),
                "accepted_at": result.get("accepted_at"),
                "stages": {s: _stage_state(records.get(s)) for s in _LISTED_STAGES},
            }
        )
    if as_json:
        echo_json(rows)
        return
    table = Table("run id", "pipeline", "trigger", "snapshot", "pipeline", "accepted at")
    for row in rows:
        table.add_row(
            row["run_id"],
            str(row["pipeline"] or "?"),
            *(_stage_cell(row["stages"][s]) for s in _LISTED_STAGES),
            str(row["accepted_at"] or ""),
        )
    Console().print(table)


def _stage_state(record: StageRecord | None) -> dict[str, str | None] | None:
    """A stage's ledger state (`running`, `done`, `failed`) and its result's status, if any."""
    if record is None:
        return None
    status = (record.result or {}).get("status")
    return {"state": record.state, "status": None if status is None else str(status)}


def _stage_cell(state: dict[str, str | None] | None) -> str:
    if state is None:
        return "-"
    return f"{state['state']}/{state['status']}" if state["status"] else str(state["state"])


@runs.command("show")
@click.argument("run_id")
def runs_show(run_id: str) -> None:
    """The ledger of one run, stage by stage, as JSON."""
    from mlrelay.stage.ledger import read_run

    records = read_run(_store(settings_from_env()), run_id)
    if not records:
        raise click.ClickException(f"run {run_id!r} is not in the ledger; see `mlrelay runs list`")
    click.echo(json.dumps({stage: rec.__dict__ for stage, rec in records.items()}, indent=2))


@cli.command()
@click.argument("pipeline")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE")
@click.option("--dedup-key", help="Default: a fresh key, so each call is a new run.")
@click.option(
    "--logical-time",
    type=click.DateTime(["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M%z"]),
    help="The schedule slot this run stands for (with a UTC offset).",
)
def trigger(
    pipeline: str, params: tuple[str, ...], dedup_key: str | None, logical_time: datetime | None
) -> None:
    """Publish a RunRequest for PIPELINE to the runs topic on Google Cloud Pub/Sub.

    Needs GOOGLE_CLOUD_PROJECT (and PUBSUB_EMULATOR_HOST for the emulator).
    """
    import getpass

    from mlrelay.adapters.pubsub_publisher import PubSubPublisher
    from mlrelay.contracts import RunRequest

    settings = settings_from_env()
    if not settings.project or settings.project == "local":
        raise click.ClickException(
            "GOOGLE_CLOUD_PROJECT is not set: export it to the project "
            "that holds the mlrelay topics"
        )
    overrides = parse_params(params)
    if settings.registry_path.exists():  # fail fast on what the trigger would reject anyway
        try:
            registry = load_registry(settings.registry_path)
            if pipeline not in registry.groups:  # a group: the trigger checks each member
                resolve_parameters(registry.pipeline(pipeline), overrides)
        except ExplainedError as exc:
            raise click.ClickException(str(exc)) from None
    request = RunRequest(
        pipeline=pipeline,
        parameters=overrides,
        logical_time=logical_time,
        dedup_key=dedup_key or (None if logical_time else f"manual-{uuid.uuid4().hex[:12]}"),
        requested_by=getpass.getuser(),
    )
    try:
        message_id = PubSubPublisher(settings.project).publish(
            settings.topics.runs, request.to_json(), request.attributes()
        )
    except ExplainedError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"published run request for {pipeline} to {settings.topics.runs} (message {message_id})"
    )


def _register_commands() -> None:
    from mlrelay_tools.cli.package_commands import package

    cli.add_command(package)
    from mlrelay_tools.cli.schedule_commands import backfill, cron, schedule, schedules

    cli.add_command(schedules)
    cli.add_command(backfill)
    cli.add_command(cron)
    cli.add_command(schedule)  # hidden: the old name of `cron`
    from mlrelay_tools.cli.notify_commands import notify

    cli.add_command(notify)
    from mlrelay_tools.cli.deadletter_commands import deadletters

    cli.add_command(deadletters)
    from mlrelay_tools.cli.rejected_commands import rejected

    cli.add_command(rejected)
    from mlrelay_tools.cli.report_commands import report

    cli.add_command(report)
    from mlrelay_tools.cli.watchdog_command import watchdog

    cli.add_command(watchdog)
    from mlrelay_tools.cli.cancel_command import cancel

    cli.add_command(cancel)
    from mlrelay_tools.cli.approval_commands import approve, reject

    cli.add_command(approve)
    cli.add_command(reject)
    from mlrelay_tools.cli.promotion_commands import promote, rollback

    cli.add_command(promote)
    cli.add_command(rollback)
    from mlrelay_tools.cli.retry_commands import retry

    cli.add_command(retry)
    from mlrelay_tools.cli.predict_command import predict

    cli.add_command(predict)
    from mlrelay_tools.cli.runs_commands import runs_compare

    runs.add_command(runs_compare)


_register_commands()
add_verbose_option(cli)  # last: every command, including those registered above
