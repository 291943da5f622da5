"""`mlrelay notify`: preview a Slack message, and list notifications Slack did not take."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from mlrelay.errors import ExplainedError
from mlrelay_tools.cli.json_output import JSON_OPTION, echo_json


@click.group()
def notify() -> None:
    """The notifier's Slack messages."""


@notify.command("preview")
@click.argument("event_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--update",
    "as_update",
    is_flag=True,
    help="Show the one-line status update (thread reply / webhook progress) instead of the card.",
)
@click.option(
    "--ledger/--no-ledger",
    default=True,
    help="Fill in trigger, parameters and snapshot from the run ledger when the run is in it.",
)
def preview(event_file: Path, as_update: bool, ledger: bool) -> None:
    """Print the Block Kit JSON of the message for a LifecycleEvent (JSON file), ready to paste
    into Slack's Block Kit Builder (https://app.slack.com/block-kit-builder). With the ledger, a
    finished run's card shows the verdict the notifier recorded in the run history (the deltas
    against the last good run, missed gates)."""
    from dataclasses import replace

    from mlrelay.config.settings import Settings
    from mlrelay.contracts import LifecycleEvent, parse_message
    from mlrelay.ports.container import Ports
    from mlrelay.stage.ledger import read_run
    from mlrelay_notifier.model_section import from_event
    from mlrelay_notifier.promotion_card import promotion_card_view
    from mlrelay_notifier.render import render_card, render_update
    from mlrelay_notifier.run_view import FINAL, build_run_view
    from mlrelay_notifier.verdict import recorded_verdict, with_verdict

    try:
        event = parse_message(LifecycleEvent, event_file.read_bytes())
        settings = Settings.from_env().read_every_section()
    except ExplainedError as exc:
        raise click.ClickException(str(exc)) from None
    store = Ports(settings).store
    records = read_run(store, event.run_id) if ledger else {}
    project = settings.project if settings.mode == "google" else None
    view = build_run_view(event, records, project=project, advance=not as_update)
    if ledger and view.pipeline and view.status in FINAL:  # the verdict the notifier recorded
        view = with_verdict(view, recorded_verdict(store, view.pipeline, view.run_id))
    if event.stage == "promotion":  # the run's card with its model section; its status stays
        view = replace(view, model=from_event(event))
        if not as_update:
            view = promotion_card_view(store, event, records, None, project=project)
    message = render_update(view) if as_update else render_card(view)
    click.echo(json.dumps(message.payload(), indent=2, ensure_ascii=False))


@notify.command("undelivered")
@JSON_OPTION
def undelivered(as_json: bool) -> None:
    """Notifications Slack did not take (kept in the bucket until one gets through)."""
    from mlrelay.config.settings import Settings
    from mlrelay.ports.container import Ports
    from mlrelay_notifier.undelivered import list_undelivered

    try:
        store = Ports(Settings.from_env().read_every_section()).store
    except ExplainedError as exc:
        raise click.ClickException(str(exc)) from None
    records = list_undelivered(store)
    if as_json:
        echo_json([_row(record) for record in records])
        return
    for record in records:
        event = record["event"]
        click.echo(
            f"{event['run_id']}  {event['stage']}.{event['status']}  "
            f"failed_at={record['failed_at']}  reason={record['reason']}"
        )
    click.echo(f"{len(records)} undelivered notification(s)")


def _row(record: dict[str, Any]) -> dict[str, Any]:
    event = record.get("event", {})
    return {
        "key": record.get("key"),
        "run_id": event.get("run_id"),
        "pipeline": event.get("pipeline"),
        "stage": event.get("stage"),
        "status": event.get("status"),
        "route": record.get("route"),
        "failed_at": record.get("failed_at"),
        "reason": record.get("reason"),
        "event": event,
    }
