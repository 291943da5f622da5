"""`mlrelay runs list --pipeline P` and `mlrelay runs compare A B` read the run history the
notifier writes and show the card's deltas, as text and as JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from mlrelay.adapters.local_folder import LocalFolderStore
from mlrelay.history import RunSummary, write_summary
from mlrelay_tools.cli.main import cli
from tests.helpers import REGISTRY

T0 = datetime(2026, 11, 30, 5, tzinfo=UTC)


def history(home: Path) -> dict[str, str]:
    store = LocalFolderStore(home / "bucket")
    common = {"pipeline": "penguins", "schedule": "default"}
    write_summary(
        store,
        RunSummary(
            run_id="penguins-a",
            status="succeeded",
            logical_time=T0,
            duration_seconds=60.0,
            rows=400,
            metrics={"accuracy": 0.98, "f1_macro": 0.97},
            schema=[{"name": "species", "type": "string"}, {"name": "year", "type": "int64"}],
            **common,  # type: ignore[arg-type]
        ),
    )
    write_summary(
        store,
        RunSummary(
            run_id="penguins-b",
            status="succeeded_with_regression",
            logical_time=T0 + timedelta(days=7),
            duration_seconds=66.0,
            rows=344,
            metrics={"accuracy": 0.8, "n_test": 84},
            schema=[{"name": "species", "type": "string"}, {"name": "year", "type": "double"}],
            baseline_run_id="penguins-a",
            regressions=["accuracy 0.8 is under the minimum 0.9"],
            **common,  # type: ignore[arg-type]
        ),
    )
    return {"MLRELAY_HOME": str(home), "MLRELAY_REGISTRY": str(REGISTRY), "COLUMNS": "200"}


def test_runs_list_of_a_pipeline_shows_its_finished_runs_oldest_first(tmp_path: Path) -> None:
    env = history(tmp_path)
    result = CliRunner().invoke(cli, ["runs", "list", "--pipeline", "penguins"], env=env)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    a = next(i for i, line in enumerate(lines) if "penguins-a" in line)
    b = next(i for i, line in enumerate(lines) if "penguins-b" in line)
    assert a < b
    assert "succeeded" in lines[a] and "400" in lines[a] and "accuracy=0.98" in lines[a]
    assert "succeeded_with_regression" in lines[b] and "66" in lines[b]
    assert "2 finished run(s) of penguins" in result.output

    as_json = CliRunner().invoke(cli, ["runs", "list", "--pipeline", "penguins", "--json"], env=env)
    rows = json.loads(as_json.stdout)
    assert [r["run_id"] for r in rows] == ["penguins-a", "penguins-b"]
    assert rows[1]["metrics"] == {"accuracy": 0.8, "n_test": 84.0}
    assert rows[1]["baseline_run_id"] == "penguins-a" and rows[1]["rows"] == 344
    assert rows[1]["regressions"] == ["accuracy 0.8 is under the minimum 0.9"]
    assert rows[0]["logical_time"] == "2026-11-30T05:00:00+00:00"


def test_runs_compare_shows_the_deltas_as_text_and_json(tmp_path: Path) -> None:
    env = history(tmp_path)
    result = CliRunner().invoke(cli, ["runs", "compare", "penguins-a", "penguins-b"], env=env)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "penguins-b (succeeded_with_regression) vs penguins-a (succeeded)",
        "  accuracy 0.98 → 0.8 ▼ -0.18 (-18.4%)",
        "  f1_macro 0.97 → gone",
        "  n_test 84 (new)",
        "  rows 400 → 344 ▼ -56 (-14.0%)",
        "  duration (s) 60 → 66 ▲ +6 (+10.0%)",
        "  column year retyped int64 → double",
    ]
    as_json = CliRunner().invoke(
        cli, ["runs", "compare", "penguins-a", "penguins-b", "--json"], env=env
    )
    body = json.loads(as_json.stdout)
    assert body["baseline_run_id"] == "penguins-a" and body["run_id"] == "penguins-b"
    accuracy = next(m for m in body["metrics"] if m["name"] == "accuracy")
    assert accuracy["direction"] == "down" and round(accuracy["change"], 6) == -0.18
    assert {m["name"]: m["direction"] for m in body["metrics"]}["n_test"] == "new"
    assert round(body["rows"]["percent"], 6) == -14.0
    assert body["schema"]["retyped"] == [{"name": "year", "before": "int64", "after": "double"}]
    assert body["status"] == "succeeded_with_regression"


def test_runs_compare_of_a_run_without_a_summary_says_where_to_look(tmp_path: Path) -> None:
    env = history(tmp_path)
    result = CliRunner().invoke(cli, ["runs", "compare", "penguins-a", "nope"], env=env)
    assert result.exit_code == 1
    assert "run 'nope' has no summary in the history" in result.output
