"""`mlrelay rejected list | replay ID`: the messages a stage refused, and sending one back."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from mlrelay.errors import ExplainedError
from mlrelay.ports.container import Ports
from mlrelay_tools.cli.environment import settings_from_env
from mlrelay_tools.cli.json_output import JSON_OPTION, echo_json
from mlrelay_tools.rejections import list_rejections, replay_rejection


@click.group("rejected")
def rejected() -> None:
    """Messages a stage rejected as never able to succeed (kept at rejected/<id>.json)."""


@rejected.command("list")
@click.option("--pending", is_flag=True, help="Only those not replayed yet.")
@JSON_OPTION
def list_command(pending: bool, as_json: bool) -> None:
    """List rejections: id, stage, field, reason, when, replay."""
    settings = settings_from_env()
    found = list_rejections(Ports(settings).store, settings.topics, include_replayed=not pending)
    if as_json:
        echo_json([r.as_json() for r in found])
        return
    table = Table("id", "stage", "field", "reason", "rejected", "replayed")
    for r in found:
        table.add_row(
            r.id,
            r.stage,
            r.field,
            r.reason if len(r.reason) <= 80 else r.reason[:79] + "…",
            r.rejected_at[:19],
            f"{r.replayed_at[:19]} as {r.replayed_as}" if r.replayed_at else "",
        )
    Console(width=180).print(table)
    click.echo(f"{len(found)} rejected message(s)")


@rejected.command("replay")
@click.argument("ident", metavar="ID")
@click.option(
    "--data",
    "data_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Publish this file's bytes instead of the kept message (a corrected copy).",
)
@click.option("--force", is_flag=True, help="Replay even if it was replayed before.")
def replay_command(ident: str, data_file: Path | None, force: bool) -> None:
    """Publish rejected message ID (as `list` shows it) to the topic its stage reads.

    Replay once the cause is fixed (a bug in mlrelay, a registry entry the message needed), or
    pass a corrected copy with --data. On Google Cloud it goes to Pub/Sub; in embedded mode the
    local runtime runs until the message and everything it causes are delivered."""
    settings = settings_from_env()
    data = data_file.read_bytes() if data_file is not None else None
    try:
        if settings.mode == "google":
            ports = Ports(settings)
            done = replay_rejection(
                ports.store, ports.publisher, settings.topics, ident, data=data, force=force
            )
        else:
            from mlrelay_tools.demo import seed_demo_warehouse
            from mlrelay_tools.local.runtime import build_local_runtime

            seed_demo_warehouse(settings.warehouse_path)
            runtime = build_local_runtime(settings)
            done = replay_rejection(
                runtime.store, runtime.bus, settings.topics, ident, data=data, force=force
            )
            stats = runtime.bus.run_until_idle()
            click.echo(f"delivered {stats.deliveries}, dead-lettered {stats.dead_lettered}")
    except ExplainedError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"replayed {done.id} to {done.topic} as {done.replayed_as}")
