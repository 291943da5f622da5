"""`mlrelay deadletters list | replay ID`: what the subscriptions gave up on, and sending it
back."""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console
from rich.table import Table

from mlrelay.errors import ExplainedError
from mlrelay.ports.container import Ports
from mlrelay.stage.dead_letters import DeadLetter
from mlrelay_tools.cli.environment import settings_from_env
from mlrelay_tools.cli.json_output import JSON_OPTION, echo_json
from mlrelay_tools.dead_letters import list_dead_letters, replay_dead_letter


@click.group("deadletters")
def deadletters() -> None:
    """Dead-lettered messages kept in the bucket (deadletters/<subscription>/<id>.json)."""


@deadletters.command("list")
@click.option("--pending", is_flag=True, help="Only those not replayed yet.")
@JSON_OPTION
def list_command(pending: bool, as_json: bool) -> None:
    """List dead letters: id, subscription, topic, failed deliveries, run, replay."""
    settings = settings_from_env()
    letters = list_dead_letters(Ports(settings).store, include_replayed=not pending)
    if as_json:
        echo_json([_row(d) for d in letters])
        return
    table = Table("id", "subscription", "topic", "attempts", "run_id", "dead-lettered", "replayed")
    for d in letters:
        table.add_row(
            d.message_id,
            d.subscription,
            d.topic,
            "" if d.delivery_attempts is None else str(d.delivery_attempts),
            d.run_id,
            d.dead_lettered_at[:19],
            f"{d.replayed_at[:19]} as {d.replayed_as}" if d.replayed_at else "",
        )
    Console(width=160).print(table)
    click.echo(f"{len(letters)} dead letter(s)")


def _row(letter: DeadLetter) -> dict[str, Any]:
    return {
        "id": letter.message_id,
        "key": letter.key,
        "subscription": letter.subscription,
        "topic": letter.topic,
        "delivery_attempts": letter.delivery_attempts,
        "run_id": letter.run_id or None,
        "attributes": letter.attributes,
        "dead_lettered_at": letter.dead_lettered_at,
        "last_error": letter.last_error,
        "replayed_at": letter.replayed_at,
        "replayed_as": letter.replayed_as,
    }


@deadletters.command("replay")
@click.argument("ident", metavar="ID")
@click.option("--force", is_flag=True, help="Replay even if it was replayed before.")
def replay_command(ident: str, force: bool) -> None:
    """Publish dead letter ID (as `list` shows it) to its original topic again.

    On Google Cloud it goes to Pub/Sub; in embedded mode the local runtime runs until the
    replayed message and everything it causes are delivered."""
    settings = settings_from_env()
    try:
        if settings.mode == "google":
            ports = Ports(settings)
            letter = replay_dead_letter(ports.store, ports.publisher, ident, force=force)
        else:
            from mlrelay_tools.demo import seed_demo_warehouse
            from mlrelay_tools.local.runtime import build_local_runtime

            seed_demo_warehouse(settings.warehouse_path)
            runtime = build_local_runtime(settings)
            letter = replay_dead_letter(runtime.store, runtime.bus, ident, force=force)
            stats = runtime.bus.run_until_idle()
            click.echo(f"delivered {stats.deliveries}, dead-lettered {stats.dead_lettered}")
    except ExplainedError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"replayed {letter.message_id} to {letter.topic} as {letter.replayed_as}")
