"""`mlrelay predict`: every row answered by one deployed model, drawn by the endpoint's split
(the answers from both models in proportion to it), each model loaded once; a bad ROW_JSON, an
unknown endpoint or a missing feature column is one line naming it and the fix."""

from __future__ import annotations

import json
import math
import pickle
import random
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mlrelay.adapters.embedded_endpoint import EmbeddedEndpoint
from mlrelay.ports.protocols import NEW_DEPLOYMENT
from mlrelay.registry.specs import PromotionSpec
from mlrelay_tools.cli.main import cli
from mlrelay_tools.serving import load_endpoint, predict
from tests.helpers import REGISTRY

SPEC = PromotionSpec(model="penguins", endpoint="penguins")
FEATURES = ("island", "bill_length_mm")
ROW = {"island": "Biscoe", "bill_length_mm": 45.1}


class Answers:
    """A fitted model's stand-in: answers `label` for every row, counts its loads."""

    loads = 0

    def __init__(self, label: str) -> None:
        self.label = label
        self.feature_names_in_ = list(FEATURES)

    def __setstate__(self, state: dict[str, Any]) -> None:
        Answers.loads += 1
        self.__dict__.update(state)

    def predict(self, frame: Any) -> Any:
        assert list(frame.columns) == list(FEATURES)  # the fitted columns, in order
        return frame["island"].map(lambda _: self.label)


def deploy_two(home: Path, tmp_path: Path, canary: int) -> None:
    """A champion (run-a, label A) and a challenger (run-b, label B) at `canary` %."""
    endpoint = EmbeddedEndpoint(home, SPEC)
    for run_id, label, split in (
        ("run-a", "A", {NEW_DEPLOYMENT: 100}),
        ("run-b", "B", {"penguins-1": 100 - canary, NEW_DEPLOYMENT: canary}),
    ):
        folder = tmp_path / run_id / "model"
        folder.mkdir(parents=True)
        (folder / "model.pkl").write_bytes(pickle.dumps(Answers(label)))
        version = endpoint.upload(run_id=run_id, artifact_uri=folder.as_uri(), labels={})
        endpoint.deploy(version=version, traffic=split)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    deploy_two(home, tmp_path, canary=10)
    return home


def env(home: Path) -> dict[str, str]:
    return {"MLRELAY_HOME": str(home), "MLRELAY_REGISTRY": str(REGISTRY)}


def test_answers_come_from_both_models_in_proportion_to_the_split(home: Path) -> None:
    n, canary = 4000, 0.10
    Answers.loads = 0
    served = load_endpoint(home, "penguins")
    answers = predict(served, [ROW] * n, random.Random())  # noqa: S311 - unseeded: bounded

    assert Answers.loads == 2  # each deployed model loaded once, not once per row
    from_b = sum(a["deployed_model_id"] == "penguins-2" for a in answers)
    sigma = math.sqrt(n * canary * (1 - canary))  # binomial: 19 of an expected 400
    assert abs(from_b - n * canary) < 6 * sigma  # false alarm odds ~ 2e-9
    assert {(a["prediction"], a["deployed_model_id"], a["run_id"]) for a in answers} == {
        ("A", "penguins-1", "run-a"),
        ("B", "penguins-2", "run-b"),
    }


def test_a_seed_makes_the_picks_repeatable_and_rows_keep_their_order(home: Path) -> None:
    served = load_endpoint(home, "penguins")
    rows = [{**ROW, "bill_length_mm": float(i)} for i in range(200)]

    first = predict(served, rows, random.Random(7))  # noqa: S311
    assert predict(served, rows, random.Random(7)) == first  # noqa: S311
    assert len(first) == 200


def test_one_row_prints_one_answer_and_a_list_one_answer_each(home: Path) -> None:
    one = CliRunner().invoke(cli, ["predict", "penguins", json.dumps(ROW)], env=env(home))
    assert one.exit_code == 0, one.output
    [answer] = [json.loads(line) for line in one.stdout.splitlines()]
    assert set(answer) == {"prediction", "deployed_model_id", "run_id"}
    assert (answer["prediction"], answer["run_id"]) in {("A", "run-a"), ("B", "run-b")}

    rows = json.dumps([ROW, ROW, ROW])
    many = CliRunner().invoke(cli, ["predict", "penguins", rows, "--json"], env=env(home))
    assert many.exit_code == 0, many.output
    assert len(json.loads(many.stdout)) == 3


def test_a_promoted_challenger_answers_every_row(home: Path, tmp_path: Path) -> None:
    EmbeddedEndpoint(home, SPEC).set_traffic({"penguins-1": 0, "penguins-2": 100})
    rows = tmp_path / "rows.json"
    rows.write_text(json.dumps([ROW] * 50))

    result = CliRunner().invoke(cli, ["predict", "penguins", f"@{rows}", "--json"], env=env(home))

    assert result.exit_code == 0, result.output
    assert {a["run_id"] for a in json.loads(result.stdout)} == {"run-b"}


@pytest.mark.parametrize(
    ("endpoint", "row_json", "said"),
    [
        ("penguins", "{island: Biscoe}", "ROW_JSON: is not JSON"),
        ("penguins", "[1]", "ROW_JSON[0]: is a int, not an object"),
        ("penguins", "[]", "ROW_JSON: is an empty list (give at least one object)"),
        ("nope", json.dumps(ROW), "ENDPOINT: no embedded endpoint 'nope'"),
        (
            "penguins",
            json.dumps({"island": "Biscoe"}),
            "ROW_JSON.bill_length_mm: is missing: the model of run run-",
        ),
        ("penguins", "@/no/such/rows.json", "ROW_JSON: cannot read /no/such/rows.json"),
    ],
)
def test_bad_input_is_one_line_naming_what_and_the_fix(
    home: Path, endpoint: str, row_json: str, said: str
) -> None:
    result = CliRunner().invoke(cli, ["predict", endpoint, row_json], env=env(home))

    assert result.exit_code == 1
    assert result.stdout == ""
    [line] = result.stderr.strip().splitlines()
    assert said in line and "(" in line  # the fix in parentheses


def test_an_unknown_endpoint_lists_the_known_ones(home: Path) -> None:
    result = CliRunner().invoke(cli, ["predict", "pengiuns", json.dumps(ROW)], env=env(home))
    assert "(known: penguins)" in result.stderr
