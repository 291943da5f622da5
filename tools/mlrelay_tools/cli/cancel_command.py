"""`mlrelay cancel RUN_ID`: the Slack card's Cancel button, from the terminal.

The same code path as the button: the run's state from the ledger, one `RunCommand` (source
`cli`, requested by `cli:<user>`) per run state under the same claim
(`commands/<run_id>/cancel-<state>.json`, mlrelay.stage.commands), published on the commands
topic. On Google Cloud the deployer's `mlrelay-cancel` function carries it out; in embedded mode
the local runtime does, in this process, and the command says what came of it.
"""

from __future__ import annotations

import contextlib
import getpass
import sys
from typing import Any

import click

from mlrelay.contracts import utc_now
from mlrelay.errors import ExplainedError
from mlrelay.ports.container import Ports
from mlrelay.stage import keys
from mlrelay.stage.commands import CommandNotPublished, find_run, request_command
from mlrelay.stage.records import StageRecord
from mlrelay_tools.cli.environment import settings_from_env


def requested_by() -> str:
    return f"cli:{getpass.getuser()}"


def ask(ports: Ports, run_id: str) -> dict[str, Any]:
    """Claim and publish the cancel command; what was asked, by whom, and whether it is new."""
    run = find_run(ports, run_id)
    outcome = request_command(
        ports,
        run,
        "cancel",
        requested_by=requested_by(),
        requested_at=utc_now(),
        response_url=None,
        source="cli",
    )
    return {
        "run_id": run.run_id,
        "pipeline": run.pipeline,
        "action": "cancel",
        "action_key": outcome.command.action_key,
        "requested_by": outcome.requested_by,
        "first": outcome.first,
        "_state": run.state,
    }


def carried_out(ports: Ports, run_id: str, state: str) -> dict[str, Any]:
    """What the deployer made of the command (embedded mode: it ran in this process)."""
    raw = ports.store.read(keys.command_done(run_id, "cancel", state))
    if raw is None:
        return {"outcome": "pending", "reason": None}
    record = StageRecord.from_json(raw)
    if record.state == "done":
        return {"outcome": "cancelled", "reason": None}
    if record.state == "failed":
        return {"outcome": "refused", "reason": record.error}
    return {"outcome": "pending", "reason": None}


@click.command("cancel")
@click.argument("run_id")
@click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON object on stdout (for scripts)."
)
def cancel(run_id: str, as_json: bool) -> None:
    """Stop RUN_ID's pipeline job (Vertex AI CancelPipelineJob, KFP terminate, or the local
    run's process), as the Cancel button on its Slack card does.

    A run that has finished, or has not been submitted yet, is refused with its state named.
    Asking twice in the same run state sends one command."""
    import json

    settings = settings_from_env()
    try:
        if settings.mode == "google":
            asked = ask(Ports(settings), run_id)
            result = {**asked, "outcome": "requested", "reason": None}
        else:
            from mlrelay_tools.demo import seed_demo_warehouse
            from mlrelay_tools.local.runtime import build_local_runtime

            seed_demo_warehouse(settings.warehouse_path)
            runtime = build_local_runtime(settings)
            # the console chat prints the run's card: on stderr, so --json stays parseable
            with contextlib.redirect_stdout(sys.stderr if as_json else sys.stdout):
                asked = ask(runtime.ports, run_id)
                runtime.bus.run_until_idle()
            result = {**asked, **carried_out(runtime.ports, run_id, asked["_state"])}
    except (ExplainedError, CommandNotPublished) as exc:
        raise click.ClickException(str(exc)) from None
    result.pop("_state")
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        click.echo(describe(result))
    if result["outcome"] == "refused":
        raise SystemExit(1)


def describe(result: dict[str, Any]) -> str:
    run, by = result["run_id"], result["requested_by"]
    if not result["first"]:
        head = f"cancel of {run} was already requested by {by} in this state"
    else:
        head = f"cancel of {run} requested by {by}"
    if result["outcome"] == "cancelled":
        return f"{head}: cancelled"
    if result["outcome"] == "refused":
        return f"{head}: refused: {result['reason']}"
    if result["outcome"] == "requested":
        return f"{head}: published; the deployer's mlrelay-cancel function carries it out"
    return f"{head}: not carried out yet"
