"""`mlrelay cron` runs the registry's schedules locally; `mlrelay schedule` is its hidden old
name (it seeds the demo warehouse, whose import of pandas runs `file`: integration tier)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from mlrelay_tools.cli.main import cli
from tests.helpers import REGISTRY


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"MLRELAY_HOME": str(tmp_path / "home"), "MLRELAY_REGISTRY": str(REGISTRY)}


def test_cron_runs_the_local_schedules_for_the_time_asked(env: dict[str, str]) -> None:
    result = CliRunner().invoke(cli, ["cron", "--for-seconds", "0"], env=env)
    assert result.exit_code == 0, result.output
    assert "local cron: next slot" in result.output
    assert "local cron stopped after 0 tick(s)" in result.output


def test_the_old_name_still_works_but_is_hidden_and_says_so(env: dict[str, str]) -> None:
    result = CliRunner().invoke(cli, ["schedule", "--for-seconds", "0"], env=env)
    assert result.exit_code == 0, result.output
    assert "local cron stopped after 0 tick(s)" in result.output
    assert "deprecated" in result.output.lower()
    listed = CliRunner().invoke(cli, ["--help"]).output
    assert "cron" in listed and "schedule " not in listed.replace("schedules", "")
