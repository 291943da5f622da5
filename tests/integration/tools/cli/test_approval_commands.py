"""`mlrelay approve` / `mlrelay reject`, embedded, as a person runs them (real subprocesses): a
demo pipeline with `approval: before_deploy` is held after its snapshot (`mlrelay run` says so
and starts nothing); `mlrelay approve RUN_ID` releases it once, through the same command path as
the Slack button, and it runs to success; asking again is refused, naming the decision. A second
held run is ended by `mlrelay reject` with one `pipeline.rejected`, and never runs."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.helpers import REGISTRY
from tests.integration.tools.cli.test_run_flow import mlrelay as run_cli


def gated_registry(tmp_path: Path) -> Path:
    """The demo registry, its penguins pipeline held for approval before deploy."""
    template = (REGISTRY.parent / "penguins" / "penguins_pipeline.yaml").resolve()
    text = REGISTRY.read_text().replace(
        "template: penguins/penguins_pipeline.yaml",
        f"template: {template}\n    approval: before_deploy\n    approval_timeout: 4h",
    )
    assert "approval: before_deploy" in text
    path = tmp_path / "registry.yaml"
    path.write_text(text)
    return path


def mlrelay(home: Path, registry: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(home, *args, registry=registry)


def held_run(home: Path, registry: Path, key: str) -> str:
    run = mlrelay(home, registry, "run", "penguins", "--dedup-key", key)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "status  held" in " ".join(run.stdout.split()).replace("status held", "status  held")
    return next(
        line.split()[-1] for line in run.stdout.splitlines() if line.strip().startswith("run id")
    )


@pytest.mark.pipeline
def test_a_held_run_is_released_once_by_mlrelay_approve_and_another_ended_by_reject(
    tmp_path: Path,
) -> None:
    home, registry = tmp_path / "home", gated_registry(tmp_path)
    bucket = home / "bucket"
    run_id = held_run(home, registry, "gated-1")
    assert not (bucket / "runs" / run_id / "pipeline.json").exists()  # nothing started
    assert (bucket / "runs" / run_id / "approval.json").exists()
    assert not (home / "pipeline-runs").exists() or not list((home / "pipeline-runs").iterdir())

    approved = mlrelay(home, registry, "approve", run_id, "--json")

    assert approved.returncode == 0, approved.stdout + approved.stderr
    row = json.loads(approved.stdout)
    assert (row["outcome"], row["first"], row["action"]) == ("approved", True, "approve")
    assert row["requested_by"].startswith("cli:")
    shown = json.loads(mlrelay(home, registry, "runs", "show", run_id).stdout)
    assert shown["pipeline"]["result"]["status"] == "succeeded"
    decision = json.loads((bucket / "runs" / run_id / "decision.json").read_text())
    assert decision["result"]["decision"] == "approved"
    assert decision["result"]["command"]["source"] == "cli"
    assert len(list((home / "pipeline-runs").iterdir())) == 1

    again = mlrelay(home, registry, "approve", run_id)
    assert again.returncode == 1, again.stdout + again.stderr
    assert f"approve of {run_id} requested by cli:" in again.stdout
    assert "refused: run_id:" in again.stdout and "it was already approved by cli:" in again.stdout
    assert len(list((home / "pipeline-runs").iterdir())) == 1  # still one pipeline run

    other = held_run(home, registry, "gated-2")
    rejected = mlrelay(home, registry, "reject", other)
    assert rejected.returncode == 0, rejected.stdout + rejected.stderr
    assert f"reject of {other} requested by cli:" in rejected.stdout
    assert rejected.stdout.rstrip().endswith(": rejected")
    said = bucket / "notifications" / other / "pipeline.rejected.json"
    assert json.loads(said.read_text())["state"] == "done"
    assert not (bucket / "runs" / other / "pipeline.json").exists()
    late = mlrelay(home, registry, "approve", other)
    assert late.returncode == 1
    assert "it was already rejected by cli:" in late.stdout
    assert len(list((home / "pipeline-runs").iterdir())) == 1  # the rejected run never ran
