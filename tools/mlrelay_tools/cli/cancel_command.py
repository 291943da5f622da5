"""`mlrelay cancel RUN_ID`: the Slack card's Cancel button, from the terminal (the code path:
mlrelay_tools.cli.run_commands)."""

from __future__ import annotations

import click

from mlrelay_tools.cli.run_commands import JSON_OPTION, run_command


@click.command("cancel")
@click.argument("run_id")
@JSON_OPTION
def cancel(run_id: str, as_json: bool) -> None:
    """Stop RUN_ID's pipeline job (Vertex AI CancelPipelineJob, KFP terminate, or the local
    run's process), as the Cancel button on its Slack card does.

    A run that has finished, or has not been submitted yet, is refused with its state named.
    Asking twice in the same run state sends one command."""
    run_command(run_id, "cancel", as_json)
