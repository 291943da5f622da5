"""The CLI as its users expect: settings read before anything starts, `-h` and `-v` on every
command, `--version`, and `--json` listings that hold nothing but JSON on stdout."""

from __future__ import annotations

import json
import re
from importlib.metadata import version
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from mlrelay.adapters.local_folder import LocalFolderStore
from mlrelay.stage import keys
from mlrelay.stage.dead_letters import keep_dead_letter
from mlrelay.stage.envelope import PubsubMessage
from mlrelay.stage.records import StageRecord
from mlrelay_notifier.undelivered import keep_undelivered
from mlrelay_tools.cli.main import cli
from tests.helpers import (
    REGISTRY,
    REPO,
    SAMPLE_ACCEPTED,
    SAMPLE_RUN,
    sample_failed_event,
    sample_ledger,
)


def test_a_bad_service_setting_stops_the_cli_before_any_work(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {"MLRELAY_HOME": str(home), "MLRELAY_REGISTRY": str(REGISTRY)}
    result = CliRunner().invoke(cli, ["run", "penguins"], env={**env, "MLRELAY_SNAPSHOT_MODE": "x"})
    assert result.exit_code == 1
    assert "MLRELAY_SNAPSHOT_MODE: 'x' is not one of the choices (use export or stream)" in (
        result.output
    )
    assert not home.exists()  # nothing seeded, published or kept


def local_env(home: Path) -> dict[str, str]:
    return {
        "MLRELAY_MODE": "embedded",
        "MLRELAY_HOME": str(home),
        "MLRELAY_REGISTRY": str(REGISTRY),
    }


def every_command(group: click.Group = cli, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [path]
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            found += every_command(command, (*path, name))
        else:
            found.append((*path, name))
    return found


@pytest.mark.parametrize("path", every_command(), ids=" ".join)
def test_every_command_answers_dash_h_and_takes_dash_v(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*path, "-h"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Usage: {' '.join(('cli', *path))}")
    assert "-v, --verbose" in result.output and "-h, --help" in result.output


def test_version_is_the_installed_package_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert result.stdout == f"mlrelay {version('mlrelay')}\n"


@pytest.mark.parametrize(
    "args",
    [
        ["-vv", "runs", "list"],
        ["runs", "list", "-vv"],
        ["-v", "runs", "list", "-v"],  # counts add up
        ["runs", "-vv", "list"],
    ],
    ids=" ".join,
)
def test_dash_vv_shows_debug_lines_on_stderr_wherever_it_is_given(
    tmp_path: Path, args: list[str]
) -> None:
    result = CliRunner().invoke(cli, [*args, "--json"], env=local_env(tmp_path))
    assert result.exit_code == 0, result.output
    [line] = [line for line in result.stderr.splitlines() if "command_started" in line]
    assert "level='debug'" in line and "command='cli runs list'" in line
    assert json.loads(result.stdout) == []  # the logs stay off stdout


@pytest.mark.parametrize("args", [["runs", "list"], ["-v", "runs", "list"]], ids=" ".join)
def test_without_dash_vv_there_are_no_debug_lines(tmp_path: Path, args: list[str]) -> None:
    CliRunner().invoke(cli, ["-vv", "runs", "list"], env=local_env(tmp_path))  # then quieter
    result = CliRunner().invoke(cli, args, env=local_env(tmp_path))
    assert result.exit_code == 0, result.output
    assert "level='debug'" not in result.stderr


def test_runs_list_json_has_one_object_per_run_with_each_stage_state(tmp_path: Path) -> None:
    store = LocalFolderStore(tmp_path / "bucket")
    for stage, record in sample_ledger().items():
        store.write(keys.ledger(SAMPLE_RUN, stage), record.to_json())
    failed = StageRecord("trigger", "failed", SAMPLE_ACCEPTED.isoformat(), error="bad")
    store.write(keys.ledger("penguins-broken", "trigger"), failed.to_json())

    result = CliRunner().invoke(cli, ["runs", "list", "--json"], env=local_env(tmp_path))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [
        {
            "run_id": "penguins-broken",
            "pipeline": None,
            "accepted_at": None,
            "stages": {
                "trigger": {"state": "failed", "status": None},
                "snapshot": None,
                "pipeline": None,
            },
        },
        {
            "run_id": SAMPLE_RUN,
            "pipeline": "penguins",
            "accepted_at": SAMPLE_ACCEPTED.isoformat(),
            "stages": {
                "trigger": {"state": "done", "status": None},
                "snapshot": {"state": "done", "status": None},
                "pipeline": None,
            },
        },
    ]
    table = CliRunner().invoke(cli, ["runs", "list"], env=local_env(tmp_path))
    assert "penguins" in table.stdout and "failed" in table.stdout  # the table is still there


def test_deadletters_list_json_has_one_object_per_letter(tmp_path: Path) -> None:
    store = LocalFolderStore(tmp_path / "bucket")
    attributes = {
        "run_id": SAMPLE_RUN,
        "CloudPubSubDeadLetterSourceSubscription": "projects/p/subscriptions/mlrelay-snapshotter",
        "CloudPubSubDeadLetterSourceDeliveryCount": "5",
    }
    message = PubsubMessage(b'{"run_id": "x"}', attributes, message_id="m-1")
    keep_dead_letter(store, message, "mlrelay-snapshots", last_error="503")

    result = CliRunner().invoke(cli, ["deadletters", "list", "--json"], env=local_env(tmp_path))
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.stdout)
    assert row == {
        "id": "m-1",
        "key": "deadletters/mlrelay-snapshotter/m-1.json",
        "subscription": "mlrelay-snapshotter",
        "topic": "mlrelay-snapshots",
        "delivery_attempts": 5,
        "run_id": SAMPLE_RUN,
        "attributes": {"run_id": SAMPLE_RUN},
        "dead_lettered_at": row["dead_lettered_at"],
        "last_error": "503",
        "replayed_at": None,
        "replayed_as": None,
    }
    pending = CliRunner().invoke(
        cli, ["deadletters", "list", "--pending", "--json"], env=local_env(tmp_path)
    )
    assert [r["id"] for r in json.loads(pending.stdout)] == ["m-1"]


def test_notify_undelivered_json_has_one_object_per_notification(tmp_path: Path) -> None:
    store = LocalFolderStore(tmp_path / "bucket")
    keep_undelivered(
        store, sample_failed_event(), {"text": "x"}, route="#ml", reason="Slack answered 503"
    )
    result = CliRunner().invoke(cli, ["notify", "undelivered", "--json"], env=local_env(tmp_path))
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.stdout)
    assert {k: v for k, v in row.items() if k not in ("key", "failed_at", "event")} == {
        "run_id": SAMPLE_RUN,
        "pipeline": "penguins",
        "stage": "pipeline",
        "status": "failed",
        "route": "#ml",
        "reason": "Slack answered 503",
    }
    assert row["event"]["error"].startswith("ValueError: bad input")
    assert (
        json.loads(
            CliRunner()
            .invoke(cli, ["notify", "undelivered", "--json"], env=local_env(tmp_path / "x"))
            .stdout
        )
        == []
    )


def test_docs_cli_page_names_every_command_and_every_option() -> None:
    page = (REPO / "docs" / "cli.md").read_text()
    missing = []
    for path in every_command():
        command = cli
        for name in path:
            assert isinstance(command, click.Group)
            command = command.commands[name]
        if command.hidden:
            continue
        if path and f"mlrelay {' '.join(path)}" not in page:
            missing.append(f"mlrelay {' '.join(path)}")
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden:
                names = [o for o in (*param.opts, *param.secondary_opts) if o.startswith("--")]
                if not any(re.search(rf"(?<![\w-]){o}(?![\w-])", page) for o in names):
                    missing.append(f"{' '.join(path)} {names[0]}")
    assert missing == [], f"docs/cli.md does not mention: {missing}"
