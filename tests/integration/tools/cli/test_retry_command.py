"""`mlrelay retry`, embedded, as an on-call person runs it (real subprocesses): a run fails because
its source table has not arrived yet; once it has, `mlrelay retry RUN_ID` makes one new attempt
of the same slot and parameters, which runs to success, and the original's card says retried."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import duckdb
import pytest

from tests.helpers import REGISTRY
from tests.integration.tools.cli.test_run_flow import mlrelay as run_cli


def late_registry(tmp_path: Path) -> Path:
    """The demo registry, reading a table that only arrives later."""
    text = REGISTRY.read_text().replace("FROM penguins\n", "FROM penguins_late\n")
    template = (REGISTRY.parent / "penguins" / "penguins_pipeline.yaml").resolve()
    text = text.replace("template: penguins/penguins_pipeline.yaml", f"template: {template}")
    assert "penguins_late" in text and str(template) in text
    path = tmp_path / "registry.yaml"
    path.write_text(text)
    return path


def mlrelay(home: Path, registry: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(home, *args, registry=registry)


@pytest.mark.pipeline
def test_a_failed_run_retried_from_the_terminal_runs_once_to_success(tmp_path: Path) -> None:
    home, registry = tmp_path / "home", late_registry(tmp_path)
    first = mlrelay(home, registry, "run", "penguins", "--dedup-key", "late-data")
    assert first.returncode == 1, first.stdout + first.stderr
    assert "status failed" in " ".join(first.stdout.split())
    run_id = next(
        line.split()[-1] for line in first.stdout.splitlines() if line.strip().startswith("run id")
    )
    # the data arrives
    with duckdb.connect(str(home / "warehouse.duckdb")) as con:
        con.execute("CREATE TABLE penguins_late AS SELECT * FROM penguins")

    retried = mlrelay(home, registry, "retry", run_id, "--json")

    assert retried.returncode == 0, retried.stdout + retried.stderr
    row = json.loads(retried.stdout)
    attempt = f"{run_id}-r2"
    assert (row["attempt_run_id"], row["status"], row["first"]) == (attempt, "succeeded", True)
    assert row["requested_by"].startswith("cli:")
    shown = json.loads(mlrelay(home, registry, "runs", "show", attempt).stdout)
    original = json.loads(mlrelay(home, registry, "runs", "show", run_id).stdout)
    made = shown["trigger"]["result"]
    assert (made["retry_of"], made["attempt"], made["command"]["source"]) == (run_id, 2, "cli")
    for field in ("pipeline", "parameters", "logical_time", "trigger"):
        assert made[field] == original["trigger"]["result"][field], field
    assert shown["pipeline"]["result"]["status"] == "succeeded"
    assert original["snapshot"]["state"] == "failed"  # the original stays as it was
    # the original's notification says who retried it and which attempt it became
    bucket = home / "bucket"
    said = bucket / "notifications" / run_id / f"trigger.retried-{attempt}.json"
    assert json.loads(said.read_text())["state"] == "done"

    again = mlrelay(home, registry, "retry", run_id)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "was already requested by cli:" in again.stdout
    assert f"attempt {attempt} succeeded" in again.stdout
    assert not (bucket / "runs" / f"{run_id}-r3").exists()
    assert len(list((home / "pipeline-runs").iterdir())) == 1  # one pipeline run: the attempt's

    refused = mlrelay(home, registry, "retry", attempt)
    assert refused.returncode == 1
    assert f"'{attempt}' is succeeded" in refused.stdout
