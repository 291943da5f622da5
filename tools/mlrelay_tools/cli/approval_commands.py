"""`mlrelay approve RUN_ID` and `mlrelay reject RUN_ID`: the Approve / Reject buttons of a held
run's Slack card, from the terminal (the code path: mlrelay_tools.cli.run_commands; the
deployer's `mlrelay-approvals` carries them out)."""

from __future__ import annotations

import click

from mlrelay_tools.cli.run_commands import JSON_OPTION, run_command


@click.command("approve")
@click.argument("run_id")
@JSON_OPTION
def approve(run_id: str, as_json: bool) -> None:
    """Let RUN_ID, held by its pipeline's `approval: before_deploy`, start its pipeline, as the
    Approve button on its Slack card does.

    A run that is not held (never gated, already approved or rejected, finished) is refused
    with its state named. Asking twice in the same run state sends one command."""
    run_command(run_id, "approve", as_json)


@click.command("reject")
@click.argument("run_id")
@JSON_OPTION
def reject(run_id: str, as_json: bool) -> None:
    """End RUN_ID, held by its pipeline's `approval: before_deploy`, without running its
    pipeline (one `pipeline.rejected`), as the Reject button on its Slack card does.

    A run that is not held is refused with its state named."""
    run_command(run_id, "reject", as_json)
