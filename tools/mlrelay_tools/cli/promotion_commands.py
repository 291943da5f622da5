"""`mlrelay promote RUN_ID` and `mlrelay rollback RUN_ID`: the Promote / Roll back buttons of a
canary's Slack card, from the terminal (the code path: mlrelay_tools.cli.run_commands; the
deployer's `mlrelay-promotion-commands` carries them out)."""

from __future__ import annotations

import click

from mlrelay_tools.cli.run_commands import JSON_OPTION, run_command


@click.command("promote")
@click.argument("run_id")
@JSON_OPTION
def promote(run_id: str, as_json: bool) -> None:
    """Give RUN_ID's canary model 100 % of its endpoint and undeploy the models beside it, as
    the Promote button on its Slack card does.

    The first decision on a canary wins: promoting it again is success with no change; a
    canary already rolled back is refused, naming when and by whom."""
    run_command(run_id, "promote", as_json)


@click.command("rollback")
@click.argument("run_id")
@JSON_OPTION
def rollback(run_id: str, as_json: bool) -> None:
    """Undeploy RUN_ID's canary model and restore its endpoint's split from before the canary,
    exactly, as the Roll back button on its Slack card does.

    A canary already promoted is refused, naming when and by whom."""
    run_command(run_id, "rollback", as_json)
