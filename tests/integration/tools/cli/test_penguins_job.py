"""The example job end to end as a user runs it (`mlrelay run penguins-job`, real subprocesses):
the plain training script trains the penguins model, `--param` reaches it, its model is the run's
`model` output; two runs' models on the embedded endpoint (champion and a 10 % challenger) answer
`mlrelay predict` in proportion to the split, then all from the promoted one, then all from the
champion after a roll back."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pyarrow.parquet as pq
from click.testing import CliRunner

from mlrelay.adapters.embedded_endpoint import EmbeddedEndpoint
from mlrelay.adapters.local_folder import LocalFolderStore
from mlrelay.ports.protocols import NEW_DEPLOYMENT
from mlrelay.registry import load_registry
from mlrelay.stage.ledger import read_run
from mlrelay_tools.cli.main import cli
from tests.helpers import REGISTRY
from tests.integration.tools.cli.test_run_flow import mlrelay


def run_job(home: Path, *params: str) -> str:
    args = [arg for param in params for arg in ("--param", param)]
    done = mlrelay(home, "run", "penguins-job", *args)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "[ok] penguins-job · pipeline.succeeded" in done.stdout
    line = next(x for x in done.stdout.splitlines() if x.strip().startswith("run id"))
    return line.split()[-1]


def rows_of(home: Path, run_id: str, dataset: str = "penguins_job") -> list[dict[str, object]]:
    """The run's snapshot rows without the label, as a client would send them."""
    [part] = (home / "bucket" / "snapshots" / dataset / run_id).glob("*.parquet")
    frame = pq.read_table(part).to_pandas().dropna()
    return frame.drop(columns=["species", "year"]).to_dict("records")  # type: ignore[no-any-return]


def test_two_job_runs_serve_as_champion_and_challenger_and_predict_follows_the_split(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    champion_run = run_job(home)
    challenger_run = run_job(home, "n_estimators=20", "max_depth=3")

    store = LocalFolderStore(home / "bucket")
    outputs = {}
    for run_id in (champion_run, challenger_run):
        result = read_run(store, run_id)["pipeline"].result or {}
        assert result["backend"] == "local_job"
        assert result["arguments"]["n_estimators"] == (100 if run_id == champion_run else 20)
        outputs[run_id] = result["outputs"]["model"]
        model_dir = Path(outputs[run_id].removeprefix("file://"))
        assert (model_dir / "model.pkl").is_file()
        metrics = json.loads((model_dir.parent / "metrics.json").read_text())
        assert set(metrics) == {"accuracy", "f1_macro", "n_train", "n_test"}
        assert metrics["accuracy"] > 0.8

    # what the promotion flow does with a run's `model` output (the endpoint's own tests
    # cover every call; here the models are the job's real ones)
    spec = load_registry(REGISTRY).pipelines["penguins-job"].promotion
    assert spec is not None
    endpoint = EmbeddedEndpoint(home, spec)
    champion = endpoint.upload(run_id=champion_run, artifact_uri=outputs[champion_run], labels={})
    endpoint.deploy(version=champion, traffic={NEW_DEPLOYMENT: 100})
    challenger = endpoint.upload(
        run_id=challenger_run, artifact_uri=outputs[challenger_run], labels={}
    )
    canary = endpoint.deploy(
        version=challenger, traffic={"penguins-1": 100 - spec.canary_percent, NEW_DEPLOYMENT: 10}
    )
    assert canary.traffic == {"penguins-1": 90, "penguins-2": 10}

    rows = rows_of(home, champion_run)
    many = rows * (3000 // len(rows) + 1)
    asked = tmp_path / "rows.json"
    asked.write_text(json.dumps(many))
    answered = mlrelay(home, "predict", spec.endpoint, f"@{asked}", "--json")
    assert answered.returncode == 0, answered.stderr
    answers = json.loads(answered.stdout)
    assert len(answers) == len(many)
    assert {a["prediction"] for a in answers} <= {"Adelie", "Chinstrap", "Gentoo"}
    from_challenger = sum(a["run_id"] == challenger_run for a in answers)
    expected, sigma = len(many) * 0.1, math.sqrt(len(many) * 0.1 * 0.9)
    assert abs(from_challenger - expected) < 6 * sigma
    assert {a["run_id"] for a in answers} == {champion_run, challenger_run}

    def predicted_by(rows: list[dict[str, object]]) -> set[str]:  # in this process: quicker
        env = {"MLRELAY_HOME": str(home), "MLRELAY_REGISTRY": str(REGISTRY)}
        result = CliRunner().invoke(
            cli, ["predict", spec.endpoint, json.dumps(rows), "--json"], env=env
        )
        assert result.exit_code == 0, result.output
        return {a["run_id"] for a in json.loads(result.stdout)}

    endpoint.set_traffic({"penguins-1": 0, "penguins-2": 100})  # promote
    assert predicted_by(rows[:50]) == {challenger_run}
    endpoint.undeploy(deployed_model_id="penguins-2", traffic={"penguins-1": 100})  # roll back
    assert predicted_by(rows[:50]) == {champion_run}
