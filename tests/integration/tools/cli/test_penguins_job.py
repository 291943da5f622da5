"""The example job and the champion / challenger cycle end to end as a user runs them on a laptop
(`mlrelay run penguins-job`, real subprocesses, the embedded endpoint): the plain training script
trains the penguins model, `--param` reaches it, its model is the run's `model` output; the first
run's model serves 100 % of the endpoint, the second's a 10 % canary beside it and
`mlrelay predict` answers from both in proportion; `mlrelay promote` gives it 100 %; a third run's
canary rolled back with `mlrelay rollback` restores the split before it exactly."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pyarrow.parquet as pq
from click.testing import CliRunner

from mlrelay.adapters.local_folder import LocalFolderStore
from mlrelay.promotion_record import read_promotion
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

    store_root = home / "endpoints" / "penguins-job.json"

    def endpoint() -> dict[str, object]:
        return json.loads(store_root.read_text())  # type: ignore[no-any-return]

    # the first model has no champion to stand beside: it serves everything
    first = read_promotion(store, champion_run)
    assert first is not None and first.state == "promoted"
    assert first.previous_traffic == {}
    # the second: a 10 % canary beside the champion, the split before it recorded
    canary = read_promotion(store, challenger_run)
    assert canary is not None and canary.state == "canary"
    assert canary.champion_run_id == champion_run
    assert canary.previous_traffic == {first.deployed_model_id: 100}
    assert endpoint()["traffic"] == {first.deployed_model_id: 90, canary.deployed_model_id: 10}

    rows = rows_of(home, champion_run)
    many = rows * (3000 // len(rows) + 1)
    asked = tmp_path / "rows.json"
    asked.write_text(json.dumps(many))
    answered = mlrelay(home, "predict", "penguins-job", f"@{asked}", "--json")
    assert answered.returncode == 0, answered.stderr
    answers = json.loads(answered.stdout)
    assert len(answers) == len(many)
    assert {a["prediction"] for a in answers} <= {"Adelie", "Chinstrap", "Gentoo"}
    from_challenger = sum(a["run_id"] == challenger_run for a in answers)
    expected, sigma = len(many) * 0.1, math.sqrt(len(many) * 0.1 * 0.9)
    assert abs(from_challenger - expected) < 6 * sigma  # binomial: 6 sigma, never by chance
    assert {a["run_id"] for a in answers} == {champion_run, challenger_run}

    def predicted_by(rows: list[dict[str, object]]) -> set[str]:  # in this process: quicker
        env = {"MLRELAY_HOME": str(home), "MLRELAY_REGISTRY": str(REGISTRY)}
        result = CliRunner().invoke(
            cli, ["predict", "penguins-job", json.dumps(rows), "--json"], env=env
        )
        assert result.exit_code == 0, result.output
        return {a["run_id"] for a in json.loads(result.stdout)}

    promoted = mlrelay(home, "promote", challenger_run)
    assert promoted.returncode == 0, promoted.stdout + promoted.stderr
    assert endpoint()["traffic"] == {canary.deployed_model_id: 100}  # the old champion undeployed
    assert predicted_by(rows[:50]) == {challenger_run}
    record = read_promotion(store, challenger_run)
    assert record is not None and record.state == "promoted"

    third_run = run_job(home, "n_estimators=50")
    third = read_promotion(store, third_run)
    assert third is not None and third.state == "canary"
    assert third.previous_traffic == {canary.deployed_model_id: 100}
    rolled = mlrelay(home, "rollback", third_run)
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    after = endpoint()
    assert after["traffic"] == third.previous_traffic  # exactly the split before the canary
    assert [d["id"] for d in after["deployed"]] == [canary.deployed_model_id]  # type: ignore[attr-defined]
    assert predicted_by(rows[:50]) == {challenger_run}
    # a second promote / rollback changes nothing and says why
    again = mlrelay(home, "promote", third_run)
    assert again.returncode != 0
    assert "rolled back" in (again.stdout + again.stderr)
    assert endpoint()["traffic"] == third.previous_traffic
