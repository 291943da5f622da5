"""New attempts of a run (mlrelay_trigger.attempts.carry_out_command), called with the real ports
of the embedded runtime: the local bus records what is published (nothing is delivered) and the
local folder holds the ledger."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from mlrelay.config.functions import FUNCTIONS
from mlrelay.config.settings import Settings
from mlrelay.contracts import DeployRequest, RunCommand, RunRequest, SnapshotRequest
from mlrelay.errors import PermanentError
from mlrelay.history import RunSummary, write_summary
from mlrelay.ports.container import use_ports
from mlrelay.stage import keys
from mlrelay.stage.envelope import PubsubMessage
from mlrelay.stage.ledger import read_run, run_once
from mlrelay.stage.open_runs import list_open
from mlrelay_tools.local.runtime import LocalRuntime
from mlrelay_trigger.accept import accept_run_request
from mlrelay_trigger.attempts import carry_out_command
from tests.helpers import Capture, RecordingChat, make_runtime

SLOT = datetime(2026, 3, 1, 6, tzinfo=UTC)
SNAPSHOT = {
    "manifest_uri": "file:///bucket/snapshots/penguins/x/manifest.json",
    "fingerprint": "ab" * 32,
    "row_count": 344,
    "total_bytes": 9000,
    "file_count": 1,
}


def original_run(runtime: LocalRuntime, *, outcome: str | None = "failed") -> str:
    """A scheduled run of penguins, accepted, snapshotted, and (unless None) ended `outcome`."""
    request = RunRequest(
        pipeline="penguins", logical_time=SLOT, trigger="schedule", parameters={"seed": 7}
    )
    message = PubsubMessage(request.to_json(), request.attributes(), message_id="m-run")
    [accepted] = accept_run_request(request, message, runtime.ports)
    run_id = accepted.run_id
    lease = runtime.settings.claim_lease
    run_once(
        runtime.store, keys.ledger(run_id, "snapshot"), "snapshot", lambda: SNAPSHOT, lease=lease
    )
    if outcome is not None:
        write_summary(
            runtime.store,
            RunSummary(run_id=run_id, pipeline="penguins", status=outcome),  # type: ignore[arg-type]
        )
    return run_id


def command(
    run_id: str, action: str = "retry", state: str = "0" * 16, **changes: Any
) -> RunCommand:
    fields: dict[str, Any] = {
        "action": action,
        "run_id": run_id,
        "pipeline": "penguins",
        "requested_by": "slack:U0ONCALL",
        "requested_at": datetime(2026, 3, 1, 9, 30, tzinfo=UTC),
        "source": "slack",
        "action_key": f"{run_id}/{action}/{state}",
        **changes,
    }
    return RunCommand(**fields)


def delivered(cmd: RunCommand, message_id: str = "c-1") -> PubsubMessage:
    return PubsubMessage(cmd.to_json(), cmd.attributes(), message_id=message_id)


def published(runtime: LocalRuntime, capture: Capture, topic: str) -> list[bytes]:
    return [m.data for t, m in capture.messages if t == topic]


def test_a_retry_of_a_failed_run_is_one_new_attempt_of_the_same_slot_and_parameters_linked(
    runtime: LocalRuntime, capture: Capture
) -> None:
    original = original_run(runtime)
    before = read_run(runtime.store, original)["trigger"].result or {}
    capture.messages.clear(), capture.events.clear()

    carry_out_command(command(original), delivered(command(original)), runtime.ports)

    attempt = f"{original}-r2"
    made = read_run(runtime.store, attempt)["trigger"].result or {}
    for field in ("pipeline", "parameters", "logical_time", "trigger", "schedule", "member"):
        assert made[field] == before[field], field
    assert (made["retry_of"], made["attempt"]) == (original, 2)
    assert made["command"]["action_key"] == f"{original}/retry/{'0' * 16}"
    assert made["requested_by"] == "slack:U0ONCALL"
    linked = json.loads(runtime.store.read(keys.attempts(original)) or b"{}")
    assert [(a["attempt"], a["run_id"], a["of"]) for a in linked["attempts"]] == [
        (2, attempt, original)
    ]
    [request] = [
        SnapshotRequest.model_validate_json(d)
        for d in published(runtime, capture, runtime.settings.topics.snapshots)
    ]
    assert (request.run_id, request.parameters) == (attempt, before["parameters"])
    assert request.logical_time == SLOT and request.trigger == "schedule"
    assert published(runtime, capture, runtime.settings.topics.deploys) == []
    assert sorted((e.run_id, e.event_type) for e in capture.events) == [
        (original, "trigger.retried"),
        (attempt, "trigger.accepted"),
    ]
    [retried] = [e for e in capture.events if e.status == "retried"]
    assert retried.details == {
        "command": {
            "action": "retry",
            "requested_by": "slack:U0ONCALL",
            "requested_at": "2026-03-01T09:30:00+00:00",
            "source": "slack",
        },
        "attempt_run_id": attempt,
    }


def test_the_same_command_three_times_or_two_commands_with_one_key_make_one_attempt(
    runtime: LocalRuntime, capture: Capture
) -> None:
    original = original_run(runtime)
    capture.messages.clear()
    click = command(original)
    for _ in range(3):  # Pub/Sub delivers the same message again
        carry_out_command(click, delivered(click), runtime.ports)
    # `mlrelay retry` in the same run state: another message, another person, the same key
    cli = command(original, requested_by="cli:alice", source="cli")
    carry_out_command(cli, delivered(cli, "c-2"), runtime.ports)

    linked = json.loads(runtime.store.read(keys.attempts(original)) or b"{}")
    assert [a["run_id"] for a in linked["attempts"]] == [f"{original}-r2"]
    assert read_run(runtime.store, f"{original}-r3") == {}
    requests = published(runtime, capture, runtime.settings.topics.snapshots)
    assert {SnapshotRequest.model_validate_json(d).run_id for d in requests} == {f"{original}-r2"}
    # a new command (the run state moved on: another key) is a further attempt
    later = command(original, state="1" * 16)
    carry_out_command(later, delivered(later, "c-3"), runtime.ports)
    assert read_run(runtime.store, f"{original}-r3")["trigger"].result["attempt"] == 3  # type: ignore[index]


def test_a_retry_of_an_attempt_is_a_further_attempt_of_the_original(
    runtime: LocalRuntime,
) -> None:
    original = original_run(runtime)
    carry_out_command(command(original), delivered(command(original)), runtime.ports)
    second = f"{original}-r2"
    write_summary(runtime.store, RunSummary(run_id=second, pipeline="penguins", status="failed"))

    carry_out_command(command(second), delivered(command(second), "c-2"), runtime.ports)

    third = read_run(runtime.store, f"{original}-r3")["trigger"].result or {}
    assert (third["retry_of"], third["attempt"], third["command"]["run_id"]) == (
        original,
        3,
        second,
    )


@pytest.mark.parametrize("outcome", [None, "succeeded"], ids=["running", "succeeded"])
def test_a_run_that_is_running_or_succeeded_is_not_retried_and_its_state_is_named(
    runtime: LocalRuntime, capture: Capture, outcome: str | None
) -> None:
    original = original_run(runtime, outcome=outcome)
    capture.messages.clear()

    with pytest.raises(PermanentError) as raised:
        carry_out_command(command(original), delivered(command(original)), runtime.ports)

    assert raised.value.field == "run_id"
    assert f"is {outcome or 'running'}" in str(raised.value)
    assert runtime.store.read(keys.attempts(original)) is None
    assert capture.messages == []


@pytest.mark.parametrize("outcome", ["succeeded_with_regression", "cancelled"])
def test_a_run_that_regressed_or_was_cancelled_may_be_retried(
    runtime: LocalRuntime, outcome: str
) -> None:
    original = original_run(runtime, outcome=outcome)
    carry_out_command(command(original), delivered(command(original)), runtime.ports)
    assert read_run(runtime.store, f"{original}-r2")["trigger"].state == "done"


def test_a_rerun_sends_the_deployer_the_original_snapshot_and_takes_none(
    runtime: LocalRuntime, capture: Capture
) -> None:
    original = original_run(runtime)
    capture.messages.clear()
    rerun = command(original, "rerun")

    carry_out_command(rerun, delivered(rerun), runtime.ports)

    assert published(runtime, capture, runtime.settings.topics.snapshots) == []
    [data] = published(runtime, capture, runtime.settings.topics.deploys)
    deploy = DeployRequest.model_validate_json(data)
    assert deploy.run_id == f"{original}-r2"
    assert deploy.snapshot.model_dump() == SNAPSHOT
    assert deploy.logical_time == SLOT and deploy.parameters["seed"] == 7
    assert (
        read_run(runtime.store, f"{original}-r2")["trigger"].result["command"]["action"] == "rerun"
    )  # type: ignore[index]


def test_a_rerun_of_a_run_without_a_complete_snapshot_is_refused(runtime: LocalRuntime) -> None:
    request = RunRequest(pipeline="penguins", logical_time=SLOT)
    message = PubsubMessage(request.to_json(), request.attributes(), message_id="m-run")
    [accepted] = accept_run_request(request, message, runtime.ports)
    write_summary(
        runtime.store, RunSummary(run_id=accepted.run_id, pipeline="penguins", status="failed")
    )
    rerun = command(accepted.run_id, "rerun")

    with pytest.raises(PermanentError, match="no complete snapshot") as raised:
        carry_out_command(rerun, delivered(rerun), runtime.ports)

    assert raised.value.field == "action"
    assert runtime.store.read(keys.attempts(accepted.run_id)) is None


def test_a_command_for_a_run_nobody_knows_is_refused(runtime: LocalRuntime) -> None:
    unknown = command("penguins-never-ran")
    with pytest.raises(PermanentError, match="not a run mlrelay knows"):
        carry_out_command(unknown, delivered(unknown), runtime.ports)


def test_the_attempts_function_reads_only_retry_rerun_and_backfill_commands() -> None:
    [spec] = [f for f in FUNCTIONS if f.entry_point == "on_run_command"]
    assert (spec.topic, spec.service_dir) == ("commands", "trigger")
    assert spec.only is not None
    assert spec.only.expression() == (
        'attributes.action = "retry" OR attributes.action = "rerun" '
        'OR attributes.action = "backfill"'
    )
    for action in ("retry", "rerun", "backfill"):
        assert spec.only.matches(command("penguins-x-1", action).attributes())
    for action in ("cancel", "approve", "reject"):
        assert not spec.only.matches(command("penguins-x-1", action).attributes())


def test_the_local_bus_delivers_only_retry_and_rerun_to_the_attempts_function(
    settings: Settings, channel: RecordingChat
) -> None:
    reached: list[str] = []

    def counted(handler: Any) -> Any:
        def deliver(event: Any) -> None:
            reached.append(json.loads(base64.b64decode(event.data["message"]["data"]))["action"])
            handler(event)

        return deliver

    def held(handler: Any) -> Any:  # the later stages are not this test's
        return lambda event: None

    wrap = {"mlrelay-attempts": counted, "mlrelay-snapshotter": held, "mlrelay-deployer": held}
    runtime = make_runtime(settings, channel, wrap=wrap)
    try:
        original = original_run(runtime)
        for action in ("cancel", "approve", "reject", "rerun"):  # only rerun is the trigger's
            runtime.ports.publish(command(original, action))
        runtime.bus.run_until_idle()
    finally:
        use_ports(None)
    assert reached == ["rerun"]
    linked = json.loads(runtime.store.read(keys.attempts(original)) or b"{}")
    assert [a["action"] for a in linked["attempts"]] == ["rerun"]


def test_an_attempt_is_watched_like_any_run_until_it_settles(
    runtime: LocalRuntime, capture: Capture
) -> None:
    # the watchdog reads the open-run index: an attempt that died silently must be in it too
    original = original_run(runtime)
    carry_out_command(command(original), delivered(command(original)), runtime.ports)

    [watched] = [run for run in list_open(runtime.store) if run.run_id == f"{original}-r2"]
    made = read_run(runtime.store, watched.run_id)["trigger"].result or {}
    assert (watched.pipeline, watched.logical_time) == (made["pipeline"], made["logical_time"])
    assert watched.accepted_at == made["accepted_at"]
