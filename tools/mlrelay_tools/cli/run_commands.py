"""`mlrelay cancel`, `approve`, `reject`, `promote` and `rollback`: a Slack card's buttons, from
the terminal, carried out by the deployer's package.

The same code path as the buttons: the run's state from the ledger, one `RunCommand` (source
`cli`, requested by `cli:<user>`) per run state under the same claim
(`commands/<run_id>/<action>-<state>.json`, mlrelay.stage.commands), published on the commands
topic. On Google Cloud the deployer's function (`mlrelay-cancel`, `mlrelay-approvals`,
`mlrelay-promotion-commands`) carries it out; in embedded mode the local runtime does, in this
process (an approval runs the pipeline there and then), and the command says what came of it.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import sys
from typing import Any

import click

from mlrelay.contracts import CommandAction, utc_now
from mlrelay.errors import ExplainedError
from mlrelay.ports.container import Ports
from mlrelay.stage import keys
from mlrelay.stage.commands import CommandNotPublished, find_run, request_command
from mlrelay.stage.records import StageRecord
from mlrelay_tools.cli.environment import settings_from_env

DONE = {
    "cancel": "cancelled",
    "approve": "approved",
    "reject": "rejected",
    "promote": "promoted",
    "rollback": "rolled back",
}
CARRIED_OUT_BY = {
    "cancel": "mlrelay-cancel",
    "approve": "mlrelay-approvals",
    "promote": "mlrelay-promotion-commands",
    "rollback": "mlrelay-promotion-commands",
}

JSON_OPTION = click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON object on stdout (for scripts)."
)


def requested_by() -> str:
    return f"cli:{getpass.getuser()}"


def ask(ports: Ports, run_id: str, action: CommandAction) -> dict[str, Any]:
    """Claim and publish the command; what was asked, by whom, and whether it is new."""
    run = find_run(ports, run_id)
    outcome = request_command(
        ports,
        run,
        action,
        requested_by=requested_by(),
        requested_at=utc_now(),
        response_url=None,
        source="cli",
    )
    return {
        "run_id": run.run_id,
        "pipeline": run.pipeline,
        "action": action,
        "action_key": outcome.command.action_key,
        "requested_by": outcome.requested_by,
        "first": outcome.first,
        "_state": run.state,
    }


def carried_out(ports: Ports, run_id: str, action: str, state: str) -> dict[str, Any]:
    """What the deployer made of the command (embedded mode: it ran in this process)."""
    raw = ports.store.read(keys.command_done(run_id, action, state))
    record = StageRecord.from_json(raw) if raw is not None else None
    if record is not None and record.state == "done":
        return {"outcome": DONE[action], "reason": None}
    if record is not None and record.state == "failed":
        return {"outcome": "refused", "reason": record.error}
    return {"outcome": "pending", "reason": None}


def run_command(run_id: str, action: CommandAction, as_json: bool) -> None:
    """Ask for `action` on RUN_ID and say what came of it; exit 1 when it was refused."""
    settings = settings_from_env()
    try:
        if settings.mode == "google":
            asked = ask(Ports(settings), run_id, action)
            result = {**asked, "outcome": "requested", "reason": None}
        else:
            from mlrelay_tools.demo import seed_demo_warehouse
            from mlrelay_tools.local.runtime import build_local_runtime

            seed_demo_warehouse(settings.warehouse_path)
            runtime = build_local_runtime(settings)
            # the console chat prints the run's card: on stderr, so --json stays parseable
            with contextlib.redirect_stdout(sys.stderr if as_json else sys.stdout):
                asked = ask(runtime.ports, run_id, action)
                runtime.bus.run_until_idle()
            result = {**asked, **carried_out(runtime.ports, run_id, action, asked["_state"])}
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
    run, by, action = result["run_id"], result["requested_by"], result["action"]
    if not result["first"]:
        head = f"{action} of {run} was already requested by {by} in this state"
    else:
        head = f"{action} of {run} requested by {by}"
    if result["outcome"] in DONE.values():
        return f"{head}: {result['outcome']}"
    if result["outcome"] == "refused":
        return f"{head}: refused: {result['reason']}"
    if result["outcome"] == "requested":
        by_function = CARRIED_OUT_BY.get(action, "mlrelay-approvals")
        return f"{head}: published; the deployer's {by_function} function carries it out"
    return f"{head}: not carried out yet"
