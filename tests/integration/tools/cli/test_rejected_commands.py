"""`mlrelay rejected list | replay` in embedded mode: a refused run request is listed (as a table
and as JSON); a corrected replay goes to the runs topic and the run completes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlrelay.adapters.local_folder import LocalFolderStore
from mlrelay.config.settings import Settings
from mlrelay.ports.container import use_ports
from mlrelay.stage import keys
from mlrelay.stage.ledger import read_run
from mlrelay_tools.cli.main import cli
from tests.helpers import RecordingChat, make_runtime, publish_run


def env_for(settings: Settings) -> dict[str, str]:
    return {
        "MLRELAY_MODE": "embedded",
        "MLRELAY_HOME": str(settings.home),
        "MLRELAY_REGISTRY": str(settings.registry_path),
    }


@pytest.mark.pipeline
def test_list_shows_the_rejection_and_a_corrected_replay_completes_the_run(
    settings: Settings, channel: RecordingChat, tmp_path: Path
) -> None:
    runtime = make_runtime(settings, channel)
    try:
        publish_run(runtime, {"pipeline": "penguins", "parameters": {"n_estimators": "many"}})
        runtime.bus.run_until_idle()
    finally:
        use_ports(None)
    runner = CliRunner()
    listed = runner.invoke(cli, ["rejected", "list", "--json"], env=env_for(settings))
    assert listed.exit_code == 0, listed.output
    [shown] = json.loads(listed.output)
    assert shown["stage"] == "trigger" and shown["topic"] == settings.topics.runs
    assert "n_estimators" in shown["reason"] and shown["replayed_at"] is None
    table = runner.invoke(cli, ["rejected", "list"], env=env_for(settings))
    assert shown["id"] in table.output and "1 rejected message(s)" in table.output

    corrected = tmp_path / "fixed.json"
    corrected.write_text(json.dumps({"pipeline": "penguins", "dedup_key": "fixed-by-hand"}))
    replayed = runner.invoke(
        cli, ["rejected", "replay", shown["id"], "--data", str(corrected)], env=env_for(settings)
    )
    use_ports(None)
    assert replayed.exit_code == 0, replayed.output
    assert f"replayed {shown['id']} to {settings.topics.runs}" in replayed.output
    store = LocalFolderStore(settings.bucket_dir)
    [run_id] = {k.split("/")[1] for k in store.list(keys.RUNS) if "-fixed-by-hand-" in k}
    stages = read_run(store, run_id)
    assert {"trigger", "snapshot", "pipeline"} <= set(stages)
    assert all(record.state == "done" for record in stages.values())
    again = runner.invoke(cli, ["rejected", "replay", shown["id"]], env=env_for(settings))
    assert again.exit_code == 1 and "--force" in again.output
    pending = runner.invoke(cli, ["rejected", "list", "--pending"], env=env_for(settings))
    assert "0 rejected message(s)" in pending.output
