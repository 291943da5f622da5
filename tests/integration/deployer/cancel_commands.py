"""Cancel commands for the deployer's tests: a run the ledger knows (its trigger record), and a
`cancel` RunCommand published on the local bus's commands topic, as the door publishes it."""

from __future__ import annotations

from datetime import UTC, datetime

from mlrelay.contracts import RunCommand
from mlrelay.stage import keys
from mlrelay.stage.ledger import run_once
from mlrelay_tools.local.runtime import LocalRuntime

STATE = "0123456789abcdef"
ASKED_AT = datetime(2026, 11, 23, 5, 30, tzinfo=UTC)


def known_run(runtime: LocalRuntime, run_id: str, pipeline: str = "penguins") -> None:
    """The trigger's record: what makes the run one mlrelay knows, and names its pipeline."""
    run_once(
        runtime.store,
        keys.ledger(run_id, "trigger"),
        "trigger",
        lambda: {"pipeline": pipeline, "run_id": run_id, "trigger": "schedule"},
        lease=runtime.settings.claim_lease,
    )


def cancel_command(
    run_id: str, *, state: str = STATE, requested_by: str = "slack:U0ONCALL"
) -> RunCommand:
    return RunCommand(
        action="cancel",
        run_id=run_id,
        pipeline="penguins",
        requested_by=requested_by,
        requested_at=ASKED_AT,
        source="slack",
        action_key=f"{run_id}/cancel/{state}",
    )


def send(runtime: LocalRuntime, command: RunCommand, times: int = 1) -> None:
    for _ in range(times):
        runtime.bus.publish(
            runtime.settings.topics.commands, command.to_json(), command.attributes()
        )
    runtime.bus.run_until_idle()
