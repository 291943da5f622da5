"""A missed slot's Backfill (mlrelay_trigger.backfill via the `mlrelay-attempts` function): the
slot's own run, made once, through the trigger's normal accept, on the embedded runtime's bus."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from mlrelay.config.settings import Settings
from mlrelay.contracts import RunCommand, RunRequest, ScheduleRef, SnapshotRequest
from mlrelay.errors import PermanentError
from mlrelay.ports.container import use_ports
from mlrelay.stage import keys
from mlrelay.stage.envelope import PubsubMessage
from mlrelay.stage.ledger import read_run
from mlrelay_tools.local.runtime import LocalRuntime
from mlrelay_trigger.attempts import carry_out_command
from tests.helpers import Capture, RecordingChat, make_runtime
from tests.unit.schedules.test_slot_runs import SLOT, slot_run_id

MISSED = slot_run_id()


def backfill(run_id: str = MISSED, state: str = "0" * 16) -> RunCommand:
    return RunCommand(
        action="backfill",
        run_id=run_id,
        pipeline="penguins",
        requested_by="slack:U0ONCALL",
        requested_at=datetime(2026, 12, 1, 9, 30, tzinfo=UTC),
        source="slack",
        action_key=f"{run_id}/backfill/{state}",
    )


def held(handler: Any) -> Any:  # the later stages are not this test's
    return lambda event: None


@pytest.fixture
def bus_runtime(settings: Settings, channel: RecordingChat) -> Any:
    wrap = {"mlrelay-snapshotter": held, "mlrelay-deployer": held, "mlrelay-notifier": held}
    runtime = make_runtime(settings, channel, wrap=wrap)
    capture = Capture(runtime.settings.topics.lifecycle)
    runtime.bus.listen(capture)
    yield runtime, capture
    use_ports(None)


def runs_made(runtime: LocalRuntime) -> list[str]:
    return sorted({k.split("/")[1] for k in runtime.store.list(keys.RUNS)})


def test_a_backfill_delivered_three_times_makes_the_slots_run_once(
    bus_runtime: tuple[LocalRuntime, Capture],
) -> None:
    runtime, capture = bus_runtime
    for _ in range(3):
        runtime.ports.publish(backfill())
    runtime.bus.run_until_idle()

    assert runs_made(runtime) == [MISSED]  # the slot's deterministic id, and no other run
    trigger = read_run(runtime.store, MISSED)["trigger"].result or {}
    assert (trigger["trigger"], trigger["logical_time"]) == ("backfill", SLOT.isoformat())
    assert trigger["requested_by"] == "slack:U0ONCALL"
    assert trigger["schedule"] == "default"
    snapshots = runtime.settings.topics.snapshots
    requests = [
        SnapshotRequest.model_validate_json(m.data) for t, m in capture.messages if t == snapshots
    ]
    assert [r.run_id for r in requests] == [MISSED]  # redeliveries re-send nothing
    accepted = [e for e in capture.events if e.event_type == "trigger.accepted"]
    assert [e.run_id for e in accepted] == [MISSED]
    assert not runtime.store.list(keys.DEAD_LETTERS)
    done = json.loads(runtime.store.read(keys.command_done(MISSED, "backfill", "0" * 16)) or b"{}")
    assert done["state"] == "done"
    assert done["result"]["run_ids"] == [MISSED]
    assert done["result"]["requested_by"] == "slack:U0ONCALL"


def test_a_second_click_or_the_late_tick_makes_nothing_twice(
    bus_runtime: tuple[LocalRuntime, Capture],
) -> None:
    runtime, _ = bus_runtime
    runtime.ports.publish(backfill())
    runtime.ports.publish(backfill(state="1" * 16))  # a click in another run state
    runtime.bus.run_until_idle()
    tick = RunRequest(
        pipeline="penguins",
        trigger="schedule",
        logical_time=SLOT,
        schedule=ScheduleRef(name="default", cron="0 6 * * 1", time_zone="Europe/Amsterdam"),
    )
    runtime.ports.publish(tick)
    runtime.bus.run_until_idle()
    assert runs_made(runtime) == [MISSED]
    trigger = read_run(runtime.store, MISSED)["trigger"].result or {}
    assert trigger["trigger"] == "backfill"  # the first to claim the slot's run made it


def test_a_backfill_naming_no_slot_is_refused(runtime: LocalRuntime) -> None:
    forged = backfill(slot_run_id(n_estimators=999))
    message = PubsubMessage(forged.to_json(), forged.attributes(), message_id="c-1")
    with pytest.raises(PermanentError, match="has the slot"):
        carry_out_command(forged, message, runtime.ports)
    assert runs_made(runtime) == []
