"""`mlrelay run`, the README's main command, as a new user runs it (a real subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REGISTRY, REPO

MLRELAY = str(Path(sys.executable).parent / "mlrelay")


def mlrelay(home: Path, *args: str, registry: Path = REGISTRY) -> subprocess.CompletedProcess[str]:
    """The CLI as a user runs it, on `registry`, printing to the console (no Slack)."""
    env = {
        **os.environ,
        "MLRELAY_HOME": str(home),
        "MLRELAY_REGISTRY": str(registry),
        "COLUMNS": "200",
    }
    env.pop("SLACK_WEBHOOK_URL", None)
    env.pop("SLACK_BOT_TOKEN", None)
    return subprocess.run(
        [MLRELAY, *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.pipeline
def test_run_trains_the_demo_and_a_rerun_with_the_same_key_reuses_everything(
    tmp_path: Path,
) -> None:
    first = mlrelay(
        tmp_path, "run", "penguins", "--dedup-key", "readme", "--param", "n_estimators=30"
    )
    assert first.returncode == 0, first.stdout + first.stderr
    out = first.stdout
    flat = " ".join(out.split())
    assert "status succeeded" in flat
    assert "snapshot 344 rows, 1 file(s)" in flat
    # accepted, snapshot, submitted, succeeded and the demo's first model promoted
    assert "metrics accuracy=" in flat and "notifications 5 sent" in flat
    assert "[ok] penguins · pipeline.succeeded" in out  # the console notification
    run_id = next(
        line.split()[-1] for line in out.splitlines() if line.strip().startswith("run id")
    )
    assert run_id.startswith("penguins-readme-")

    second = mlrelay(
        tmp_path, "run", "penguins", "--dedup-key", "readme", "--param", "n_estimators=30"
    )
    assert second.returncode == 0, second.stdout + second.stderr
    assert run_id in second.stdout
    flat = " ".join(second.stdout.split())
    assert "reused pipeline, snapshot, trigger (recorded earlier: no work redone)" in flat
    assert "notifications 0 sent" in flat
    assert len(list((tmp_path / "pipeline-runs").iterdir())) == 1

    listed = mlrelay(tmp_path, "runs", "list")
    assert run_id in listed.stdout and "done/succeeded" in listed.stdout
    shown = json.loads(mlrelay(tmp_path, "runs", "show", run_id).stdout)
    assert set(shown) == {"trigger", "snapshot", "pipeline"}
    assert shown["pipeline"]["result"]["metrics"]["accuracy"] > 0.9


def test_run_with_a_forbidden_override_is_rejected_and_exits_non_zero(tmp_path: Path) -> None:
    result = mlrelay(tmp_path, "run", "penguins", "--param", "test_fraction=0.9")
    assert result.returncode == 1
    flat = " ".join(result.stdout.split())
    assert "status rejected" in flat
    assert "parameters.test_fraction: may not be overridden" in flat
    assert mlrelay(tmp_path, "runs", "show", "nope").returncode == 1
