"""Two penguins runs with different parameters through `mlrelay run` (real subprocesses, the
embedded flow): the second run's card, through `mlrelay notify preview`, shows the deltas
against the first; a degrading parameter misses the demo's gate and the run ends
`succeeded_with_regression`; the history holds both summaries, and `mlrelay report` draws them
with the ledger's numbers (the page as headless Chromium renders it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlrelay.contracts import LifecycleEvent
from tests.integration.tools.cli.test_run_flow import mlrelay


def run_id_of(out: str) -> str:
    return next(line.split()[-1] for line in out.splitlines() if line.strip().startswith("run id"))


def preview(home: Path, run_id: str) -> dict[str, object]:
    event = LifecycleEvent(
        run_id=run_id, pipeline="penguins", stage="pipeline", status="succeeded", summary="done"
    )
    path = home / f"{run_id}.json"
    path.write_text(event.model_dump_json())
    shown = mlrelay(home, "notify", "preview", str(path))
    assert shown.returncode == 0, shown.stdout + shown.stderr
    return json.loads(shown.stdout)  # type: ignore[no-any-return]


@pytest.mark.pipeline
def test_a_degrading_parameter_regresses_against_the_last_good_run(tmp_path: Path) -> None:
    first = mlrelay(tmp_path, "run", "penguins", "--param", "n_estimators=30")
    assert first.returncode == 0, first.stdout + first.stderr
    good = run_id_of(first.stdout)
    assert "no baseline (no earlier good run of this pipeline)" in first.stdout

    second = mlrelay(tmp_path, "run", "penguins", "--param", "max_depth=1")
    assert second.returncode == 1, second.stdout + second.stderr  # announced like a failure
    bad = run_id_of(second.stdout)
    flat = " ".join(second.stdout.split())
    assert "status succeeded_with_regression" in flat
    assert "[REGRESSION] penguins · pipeline.succeeded_with_regression" in second.stdout
    assert "gate missed: accuracy" in second.stdout and "is under the minimum 0.9" in flat

    card = preview(tmp_path, bad)
    blocks = card["blocks"]
    assert blocks[0]["text"]["text"] == ":warning: penguins: succeeded with regression"  # type: ignore[index]
    [attachment] = card["attachments"]  # type: ignore[misc]
    assert attachment["color"] == "#ECB22E"
    sections = [b["text"]["text"] for b in attachment["blocks"] if b["type"] == "section"]
    compared = next(s for s in sections if s.startswith("*vs last good run*"))
    assert f"`{good}`" in compared
    accuracy = next(line for line in compared.splitlines() if line.startswith("• accuracy"))
    assert "▼" in accuracy and "%)" in accuracy
    assert "• rows 344 → 344 =" in compared and "• schema unchanged" in compared
    assert any(s.startswith("*Gates missed*") for s in sections)

    first_card = preview(tmp_path, good)
    [first_attachment] = first_card["attachments"]  # type: ignore[misc]
    assert first_attachment["color"] == "#2EB67D"
    assert "no baseline" in json.dumps(first_attachment)

    listed = json.loads(
        mlrelay(tmp_path, "runs", "list", "--pipeline", "penguins", "--json").stdout
    )
    assert [(r["run_id"], r["status"]) for r in listed] == [
        (good, "succeeded"),
        (bad, "succeeded_with_regression"),
    ]
    assert listed[1]["baseline_run_id"] == good and listed[0]["rows"] == 344
    ledger = json.loads(mlrelay(tmp_path, "runs", "show", bad).stdout)
    assert listed[1]["metrics"]["accuracy"] == ledger["pipeline"]["result"]["metrics"]["accuracy"]
    compared_json = json.loads(mlrelay(tmp_path, "runs", "compare", good, bad, "--json").stdout)
    assert {m["name"]: m["direction"] for m in compared_json["metrics"]}["accuracy"] == "down"

    # the history as a picture: the page's numbers, as Chromium renders them, are the ledger's
    from tests.integration.tools.cli.test_report_command import chromium
    from tests.report_pages import runs_table

    page = tmp_path / "report.html"
    drawn = mlrelay(tmp_path, "report", "penguins", "--output", str(page))
    assert drawn.returncode == 0, drawn.stdout + drawn.stderr
    rows = runs_table(chromium(tmp_path, "--dump-dom", page.as_uri()).stdout.decode())
    assert [(r["run id"], r["status"]) for r in rows] == [
        (bad, "succeeded_with_regression"),
        (good, "succeeded"),
    ]
    for row, run_id in zip(rows, (bad, good), strict=True):
        recorded = json.loads(mlrelay(tmp_path, "runs", "show", run_id).stdout)
        assert int(row["rows@value"]) == recorded["snapshot"]["result"]["row_count"] == 344
        accuracy = recorded["pipeline"]["result"]["metrics"]["accuracy"]
        assert float(row["accuracy@value"]) == accuracy
