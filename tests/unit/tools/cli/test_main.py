"""The CLI reads every service's settings before it starts anything: a bad value is named."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from mlrelay_tools.cli.main import cli
from tests.helpers import REGISTRY


def test_a_bad_service_setting_stops_the_cli_before_any_work(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {"MLRELAY_HOME": str(home), "MLRELAY_REGISTRY": str(REGISTRY)}
    result = CliRunner().invoke(cli, ["run", "penguins"], env={**env, "MLRELAY_SNAPSHOT_MODE": "x"})
    assert result.exit_code == 1
    assert "MLRELAY_SNAPSHOT_MODE: 'x' is not one of the choices (use export or stream)" in (
        result.output
    )
    assert not home.exists()  # nothing seeded, published or kept
