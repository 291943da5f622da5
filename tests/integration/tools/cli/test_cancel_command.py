"""`mlrelay cancel RUN_ID` in embedded mode: the same claim and RunCommand as the Slack button
(source `cli`, requested by `cli:<user>`), carried out by the deployer's consumer in the CLI's
own local runtime: a local run's child (running in another thread here, as in another `mlrelay`
process) is stopped and the run ends `cancelled`; a finished run is refused, naming its state."""

from __future__ import annotations

import getpass
import json
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlrelay.adapters.local_folder import LocalFolderStore
from mlrelay.config.settings import Settings
from mlrelay.contracts import utc_now
from mlrelay.history import read_summary
from mlrelay.ports.container import use_ports
from mlrelay.stage import keys
from mlrelay.stage.ledger import StageRecord
from mlrelay_deployer.kfp_local import PID_FILE, LocalRunResult, run_local_pipeline
from mlrelay_tools.cli.main import cli
from tests.helpers import PENGUINS_TEMPLATE

RUN_ID = "penguins-demo-9-0123456789ab"


def env_for(settings: Settings) -> dict[str, str]:
    return {
        "MLRELAY_MODE": "embedded",
        "MLRELAY_HOME": str(settings.home),
        "MLRELAY_REGISTRY": str(settings.registry_path),
    }


@pytest.fixture(autouse=True)
def _reset_ports() -> Iterator[None]:
    yield
    use_ports(None)


def ledger(store: LocalFolderStore, stage: str, state: str, result: dict[str, object]) -> None:
    now = utc_now()
    record = StageRecord(
        stage,
        state,
        now.isoformat(),
        (now + timedelta(hours=1)).isoformat(),
        result=result,  # type: ignore[arg-type]
    )
    store.write(keys.ledger(RUN_ID, stage), record.to_json())


def known_run(settings: Settings) -> LocalFolderStore:
    store = LocalFolderStore(settings.bucket_dir)
    began = utc_now().isoformat()
    trigger = {"run_id": RUN_ID, "pipeline": "penguins", "trigger": "manual",
               "accepted_at": began, "logical_time": began, "parameters": {}}  # fmt: skip
    ledger(store, "trigger", "done", trigger)
    return store


def test_cancel_stops_a_running_local_run_through_the_command_path(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = known_run(settings)
    ledger(store, "pipeline", "running", {})  # the deployer's claim, held while kfp.local runs
    fake_python = tmp_path / "fake-python"  # the kfp.local child, standing in
    fake_python.write_text("#!/bin/sh\nsleep 60 &\nwait\n")
    fake_python.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(fake_python))
    workdir = settings.home / keys.PIPELINE_RUNS / RUN_ID
    results: list[LocalRunResult] = []
    runner = threading.Thread(
        target=lambda: results.append(run_local_pipeline(PENGUINS_TEMPLATE, {}, workdir))
    )
    runner.start()
    deadline = time.monotonic() + 10
    while not (workdir / PID_FILE).exists():
        assert time.monotonic() < deadline
        time.sleep(0.02)

    done = CliRunner().invoke(cli, ["cancel", RUN_ID, "--json"], env=env_for(settings))
    runner.join(timeout=10)

    assert done.exit_code == 0, done.output
    shown = json.loads(done.stdout)
    assert shown["outcome"] == "cancelled" and shown["first"] is True
    assert shown["requested_by"] == f"cli:{getpass.getuser()}"
    state = shown["action_key"].rsplit("/", 1)[1]
    assert shown["action_key"] == f"{RUN_ID}/cancel/{state}"
    claim = StageRecord.from_json(store.read(keys.command(RUN_ID, "cancel", state)) or b"")
    assert claim.state == "done" and claim.result["requested_by"] == shown["requested_by"]  # type: ignore[index]
    [result] = results
    assert result.status == "cancelled"
    assert result.cancelled_by is not None and result.cancelled_by["source"] == "cli"
    assert result.cancelled_by["requested_by"] == shown["requested_by"]
    summary = read_summary(store, "penguins", RUN_ID)  # the notifier heard pipeline.cancelled
    assert summary is not None and summary.status == "cancelled"
    assert store.read(keys.notification(RUN_ID, "pipeline.cancelled")) is not None


def test_cancel_of_a_finished_run_is_refused_naming_its_state(settings: Settings) -> None:
    store = known_run(settings)
    ledger(store, "pipeline", "done", {"status": "succeeded", "job_name": RUN_ID})

    done = CliRunner().invoke(cli, ["cancel", RUN_ID], env=env_for(settings))

    assert done.exit_code == 1, done.output
    assert f"refused: run_id: {RUN_ID} has already ended (succeeded)" in done.output
    assert store.read(keys.notification(RUN_ID, "pipeline.cancelled")) is None


def test_cancel_twice_in_the_same_state_sends_one_command(settings: Settings) -> None:
    store = known_run(settings)
    ledger(store, "pipeline", "done", {"status": "succeeded", "job_name": RUN_ID})
    runner = CliRunner()

    first = runner.invoke(cli, ["cancel", RUN_ID, "--json"], env=env_for(settings))
    use_ports(None)
    second = runner.invoke(cli, ["cancel", RUN_ID, "--json"], env=env_for(settings))

    assert json.loads(first.stdout)["first"] is True
    assert json.loads(second.stdout)["first"] is False
    assert len([k for k in store.list(keys.REJECTED)]) == 1  # one command reached the deployer


def test_cancel_of_a_run_mlrelay_does_not_know_says_so(settings: Settings) -> None:
    done = CliRunner().invoke(cli, ["cancel", "penguins-nope-1"], env=env_for(settings))

    assert done.exit_code == 1
    assert "'penguins-nope-1' is not a run mlrelay knows" in done.output
