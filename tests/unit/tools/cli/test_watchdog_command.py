"""`mlrelay watchdog`: one pass on the embedded bucket, what it found as a table or as JSON; the
second pass names the same finding as already said and publishes nothing new."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from click.testing import CliRunner

from mlrelay.adapters.local_folder import LocalFolderStore
from mlrelay.contracts import utc_now
from mlrelay_tools.cli.main import cli
from tests.helpers import REGISTRY
from tests.watchdog_kit import accepted


def test_watchdog_reports_a_stuck_run_once_and_then_as_seen(tmp_path: Path) -> None:
    env = {"MLRELAY_HOME": str(tmp_path), "MLRELAY_REGISTRY": str(REGISTRY), "COLUMNS": "200"}
    store = LocalFolderStore(tmp_path / "bucket")
    long_ago = utc_now() - timedelta(hours=2)
    accepted(store, "penguins-stuck-run-1", slot=long_ago, at=long_ago)

    first = CliRunner().invoke(cli, ["watchdog", "--json"], env=env)
    assert first.exit_code == 0, first.output
    rows = json.loads(first.stdout)
    stuck = [r for r in rows if r["kind"] == "stuck"]
    assert stuck == [
        {
            "kind": "stuck",
            "run_id": "penguins-stuck-run-1",
            "pipeline": "penguins",
            "stage": "snapshot",
            "what": stuck[0]["what"],
            "new": True,
        }
    ]
    assert "accepted, never snapshotted" in stuck[0]["what"]

    again = CliRunner().invoke(cli, ["watchdog"], env=env)
    assert again.exit_code == 0, again.output
    assert "[seen] stuck" in again.output and "[new ] stuck" not in again.output
    assert "1 open run(s)" in again.output
