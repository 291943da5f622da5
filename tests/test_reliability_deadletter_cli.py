"""`mlrelay deadletters list | replay` in embedded mode: the local bus keeps what a subscription
gave up on; after the fix, the replay sends it back to its topic and the run completes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlrelay.adapters.local_folder import LocalFolderStore
from mlrelay.config.settings import Settings
from mlrelay.errors import PermanentError, TransientError
from mlrelay.ports.container import use_ports
from mlrelay.stage.dead_letters import list_dead_letters, replay_dead_letter
from mlrelay.stage.ledger import read_run
from mlrelay_tools.cli.main import cli

from .helpers import RecordingChannel, make_runtime


def env_for(settings: Settings) -> dict[str, str]:
    return {
        "MLRELAY_MODE": "embedded",
        "MLRELAY_HOME": str(settings.home),
        "MLRELAY_REGISTRY": str(settings.registry_path),
    }


def broken(handler: object) -> object:
    def always_failing(event: object) -> None:
        raise TransientError("snapshot warehouse down (503)")

    return always_failing


def dead_letter_a_run(settings: Settings, channel: RecordingChannel) -> str:
    runtime = make_runtime(settings, channel, wrap={"mlrelay-snapshotter": broken})
    try:
        data = json.dumps({"pipeline": "penguins", "dedup_key": "dl-cli"}).encode()
        runtime.bus.publish(settings.topics.runs, data, {"event_type": "run_request"})
        stats = runtime.bus.run_until_idle()
    finally:
        use_ports(None)
    assert stats.dead_lettered == 1
    [run_id] = [r for r in runtime.store.list("runs/") if "dl-cli" in r]
    return run_id.split("/")[1]


@pytest.mark.pipeline
def test_list_shows_the_dead_letter_and_replay_after_the_fix_completes_the_run(
    settings: Settings, channel: RecordingChannel
) -> None:
    run_id = dead_letter_a_run(settings, channel)
    store = LocalFolderStore(settings.bucket_dir)
    assert set(read_run(store, run_id)) == {"trigger"}
    [letter] = list_dead_letters(store)
    assert letter.subscription == "mlrelay-snapshotter" and letter.run_id == run_id
    assert letter.topic == settings.topics.snapshots and letter.delivery_attempts == 3

    runner = CliRunner()
    listed = runner.invoke(cli, ["deadletters", "list"], env=env_for(settings))
    assert listed.exit_code == 0, listed.output
    assert letter.message_id in listed.output and "1 dead letter(s)" in listed.output

    replayed = runner.invoke(
        cli, ["deadletters", "replay", letter.message_id], env=env_for(settings)
    )
    use_ports(None)
    assert replayed.exit_code == 0, replayed.output
    stages = read_run(store, run_id)
    assert {"trigger", "snapshot", "deploy"} <= set(stages)
    assert all(record.state == "done" for record in stages.values())
    [after] = list_dead_letters(store)
    assert after.replayed_at and after.replayed_as
    pending = runner.invoke(cli, ["deadletters", "list", "--pending"], env=env_for(settings))
    assert "0 dead letter(s)" in pending.output


def test_a_second_replay_needs_force_and_an_unknown_id_is_named(tmp_path: Path) -> None:
    store = LocalFolderStore(tmp_path)
    record = {
        "subscription": "mlrelay-trigger",
        "topic": "mlrelay-runs",
        "delivery_attempts": 5,
        "message": {"message_id": "m-1", "attributes": {"run_id": "r-1"}, "data": "{}"},
    }
    store.create("deadletters/mlrelay-trigger/m-1.json", json.dumps(record).encode())
    sent: list[tuple[str, bytes, dict[str, str]]] = []

    class Publisher:
        def publish(self, topic: str, data: bytes, attributes: dict[str, str]) -> str:
            sent.append((topic, data, attributes))
            return f"new-{len(sent)}"

    first = replay_dead_letter(store, Publisher(), "m-1")
    assert sent == [("mlrelay-runs", b"{}", {"run_id": "r-1"})] and first.replayed_as == "new-1"
    with pytest.raises(PermanentError, match="--force"):
        replay_dead_letter(store, Publisher(), "m-1")
    assert replay_dead_letter(store, Publisher(), "m-1", force=True).replayed_as == "new-2"
    with pytest.raises(PermanentError, match="not a dead letter"):
        replay_dead_letter(store, Publisher(), "nope")
