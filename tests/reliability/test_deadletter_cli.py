"""`mlrelay deadletters list | replay` in embedded mode: the local bus keeps what a subscription
gave up on; after the fix, the replay sends it back to its topic and the run completes."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from mlrelay.adapters.local_folder import LocalFolderStore
from mlrelay.config.settings import Settings
from mlrelay.errors import TransientError
from mlrelay.ports.container import use_ports
from mlrelay.stage.ledger import read_run
from mlrelay_tools.cli.main import cli
from mlrelay_tools.dead_letters import list_dead_letters
from tests.helpers import RecordingChat, make_runtime


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


def dead_letter_a_run(settings: Settings, channel: RecordingChat) -> str:
    runtime = make_runtime(settings, channel, wrap={"mlrelay-snapshotter": broken})
    try:
        data = json.dumps({"pipeline": "penguins", "dedup_key": "dl-cli"}).encode()
        runtime.bus.publish(settings.topics.runs, data, {"event_type": "run_request"})
        stats = runtime.bus.run_until_idle()
    finally:
        use_ports(None)
    assert stats.dead_lettered == 1
    [run_id] = {r.split("/")[1] for r in runtime.store.list("runs/") if "dl-cli" in r}
    return run_id


@pytest.mark.pipeline
def test_list_shows_the_dead_letter_and_replay_after_the_fix_completes_the_run(
    settings: Settings, channel: RecordingChat
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
    assert {"trigger", "snapshot", "pipeline"} <= set(stages)
    assert all(record.state == "done" for record in stages.values())
    [after] = list_dead_letters(store)
    assert after.replayed_at and after.replayed_as
    pending = runner.invoke(cli, ["deadletters", "list", "--pending"], env=env_for(settings))
    assert "0 dead letter(s)" in pending.output
