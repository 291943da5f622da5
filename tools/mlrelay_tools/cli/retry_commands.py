"""`mlrelay retry RUN_ID [--same-snapshot]`: the Retry (or Rerun) button, from the terminal.

The same code path as the button (mlrelay.stage.commands): the same `RunCommand` (source `cli`,
requested by `cli:<user>`) under the same claim, so a click and the command in the same run
state make one attempt. On Google Cloud it is published to the commands topic and the attempts
function carries it out; in embedded mode the local runtime runs until the attempt has finished.
"""

from __future__ import annotations

import getpass
import json
import sys
from dataclasses import dataclass
from typing import Any

import click

from mlrelay.config.settings import Settings
from mlrelay.contracts import CommandAction, LifecycleEvent, utc_now
from mlrelay.errors import ExplainedError
from mlrelay.history import read_summary
from mlrelay.ports.container import Ports
from mlrelay.stage import keys
from mlrelay.stage.commands import CommandOutcome, find_run, request_command
from mlrelay_tools.cli.environment import settings_from_env


@dataclass
class Retried:
    outcome: CommandOutcome
    attempt_run_id: str | None = None  # embedded: the attempt the command made
    status: str | None = None  # embedded: how that attempt ended (or the rejection)
    reason: str | None = None

    def row(self) -> dict[str, Any]:
        command = self.outcome.command
        return {
            "run_id": command.run_id,
            "action": command.action,
            "action_key": command.action_key,
            "requested_by": self.outcome.requested_by,
            "first": self.outcome.first,
            "attempt_run_id": self.attempt_run_id,
            "status": self.status,
            "reason": self.reason,
        }


def ask(ports: Ports, run_id: str, action: CommandAction) -> CommandOutcome:
    return request_command(
        ports,
        find_run(ports, run_id),
        action,
        requested_by=f"cli:{getpass.getuser()}",
        requested_at=utc_now(),
        response_url=None,
        source="cli",
    )


def attempt_made(ports: Ports, outcome: CommandOutcome) -> str | None:
    """The attempt the trigger recorded for this command's key, if it made one."""
    command = outcome.command
    trigger = ports.store.read(keys.ledger(command.run_id, "trigger"))
    original = (json.loads(trigger).get("result") or {}).get("retry_of") if trigger else None
    raw = ports.store.read(keys.attempts(original or command.run_id))
    for attempt in json.loads(raw)["attempts"] if raw else []:
        if attempt["action_key"] == command.action_key:
            return str(attempt["run_id"])
    return None


def retry_embedded(
    settings: Settings, run_id: str, action: CommandAction, *, quiet_stdout: bool
) -> Retried:
    """`quiet_stdout` (`--json`): the console's notifications go to stderr."""
    from mlrelay_notifier.chat_choice import ConsoleChat, as_chat, build_chat
    from mlrelay_tools.demo import seed_demo_warehouse
    from mlrelay_tools.local.runtime import build_local_runtime

    seed_demo_warehouse(settings.warehouse_path)
    chat = build_chat(Ports(settings))
    if quiet_stdout and chat.name == "console":
        chat = as_chat(ConsoleChat(sys.stderr))
    runtime = build_local_runtime(settings, chat=chat)
    refused: list[LifecycleEvent] = []

    def on_message(topic: str, message: Any) -> None:
        if topic == settings.topics.lifecycle:
            event = LifecycleEvent.model_validate_json(message.data)
            if event.status == "rejected" and event.stage == "trigger":
                refused.append(event)

    runtime.bus.listen(on_message)
    outcome = ask(runtime.ports, run_id, action)
    runtime.bus.run_until_idle()
    done = Retried(outcome, attempt_made(runtime.ports, outcome))
    if done.attempt_run_id is None:
        done.status = "rejected" if refused else "not started"
        done.reason = refused[0].error if refused else None
        return done
    summary = read_summary(runtime.store, outcome.command.pipeline, done.attempt_run_id)
    done.status = summary.status if summary is not None else "incomplete"
    done.reason = summary.error if summary is not None else None
    return done


@click.command("retry")
@click.argument("run_id")
@click.option(
    "--same-snapshot",
    is_flag=True,
    help="Rerun on the run's own snapshot (no new snapshot) instead of retrying from scratch.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def retry(run_id: str, same_snapshot: bool, as_json: bool) -> None:
    """Start a new attempt of RUN_ID (a run that failed, regressed or was cancelled): the same
    pipeline, slot and parameters, a new run id `<original>-r<n>` linked to the original."""
    action: CommandAction = "rerun" if same_snapshot else "retry"
    settings = settings_from_env()
    try:
        if settings.mode == "google":
            done = Retried(ask(Ports(settings), run_id, action))
        else:
            done = retry_embedded(settings, run_id, action, quiet_stdout=as_json)
    except ExplainedError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(done.row(), indent=2))
    else:
        click.echo(describe(done, settings))
    sys.exit(0 if done.status in (None, "succeeded") else 1)


def describe(done: Retried, settings: Settings) -> str:
    command, outcome = done.outcome.command, done.outcome
    if outcome.first:
        line = f"{command.action} of {command.run_id} requested by {outcome.requested_by}"
    else:
        line = (
            f"{command.action} of {command.run_id} was already requested by {outcome.requested_by}"
        )
    if settings.mode == "google":
        return f"{line}: published to {settings.topics.commands}"
    if done.attempt_run_id is None:
        return f"{line}: no attempt was made ({done.status}: {done.reason or 'see the logs'})"
    text = f"{line}: attempt {done.attempt_run_id} {done.status}"
    return text + (f" ({done.reason})" if done.reason else "")
