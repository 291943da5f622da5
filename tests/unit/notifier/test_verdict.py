"""The notifier's verdict on a finished run: its summary in the history, the comparison with the
last good run on the card, and a missed gate -> `succeeded_with_regression`, posted like a
failure."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from mlrelay.adapters.local_folder import LocalFolderStore
from mlrelay.contracts import LifecycleEvent
from mlrelay.history import list_summaries, read_summary
from mlrelay.registry import GateSpec, NotifySpec
from mlrelay.stage.records import StageRecord
from mlrelay_notifier.policy import wants_post
from mlrelay_notifier.render import render_card
from mlrelay_notifier.run_view import build_run_view
from mlrelay_notifier.verdict import judge, with_verdict
from tests.fakes.slack import block_problem

T0 = datetime(2026, 11, 30, 5, tzinfo=UTC)
GATES = {"accuracy": GateSpec(min=0.9, max_drop=0.05)}
SCHEMA = [{"name": "species", "type": "string"}, {"name": "year", "type": "int64"}]


def ledger(
    store: LocalFolderStore, run_id: str, hours: int, rows: int, schema: Any
) -> dict[str, StageRecord]:
    key = f"snapshots/penguins/{run_id}/manifest.json"
    store.write(
        key,
        json.dumps(
            {
                "schema": schema,
                "quality": [
                    {
                        "name": "sex_nulls",
                        "check": "max_null_fraction",
                        "column": "sex",
                        "severity": "warn",
                        "passed": False,
                        "observed": 0.03,
                        "expected": 0.01,
                        "message": "sex: 3.0% nulls, more than 1.0%",
                    }
                ],
            }
        ).encode(),
    )
    accepted = (T0 + timedelta(hours=hours)).isoformat()
    return {
        "trigger": StageRecord(
            "trigger",
            "done",
            accepted,
            result={
                "pipeline": "penguins",
                "logical_time": accepted,
                "accepted_at": accepted,
                "trigger": "schedule",
                "schedule": "default",
                "parameters": {"max_depth": 6},
            },
        ),
        "snapshot": StageRecord(
            "snapshot",
            "done",
            accepted,
            result={
                "manifest_uri": store.uri(key),
                "row_count": rows,
                "total_bytes": 10,
                "file_count": 1,
            },
        ),
    }


def finish(
    store: LocalFolderStore,
    run_id: str,
    hours: int,
    accuracy: float,
    rows: int = 344,
    schema: Any = SCHEMA,
) -> tuple[Any, Any]:
    records = ledger(store, run_id, hours, rows, schema)
    event = LifecycleEvent(
        run_id=run_id,
        pipeline="penguins",
        stage="pipeline",
        status="succeeded",
        summary="pipeline penguins succeeded",
        figures={"accuracy": accuracy, "n_test": 84},
        occurred_at=T0 + timedelta(hours=hours, minutes=2),
    )
    view = build_run_view(event, records)
    verdict = judge(event, view, records, store, GATES)
    return with_verdict(view, verdict), verdict


def test_the_first_run_says_no_baseline_and_is_written_to_the_history(tmp_path: Path) -> None:
    store = LocalFolderStore(tmp_path)
    view, verdict = finish(store, "run-a", 0, 0.97)
    assert verdict is not None and verdict.status == "succeeded"
    text = json.dumps(render_card(view).payload(), ensure_ascii=False)
    assert "no baseline (no earlier good run of this pipeline)" in text
    summary = read_summary(store, "penguins", "run-a")
    assert summary is not None and summary.metrics == {"accuracy": 0.97, "n_test": 84.0}
    assert (summary.rows, summary.schedule, summary.duration_seconds) == (344, "default", 120.0)
    assert summary.schema_ == SCHEMA and summary.baseline_run_id is None


def test_the_next_card_shows_the_deltas_against_the_last_good_run(tmp_path: Path) -> None:
    store = LocalFolderStore(tmp_path)
    finish(store, "run-a", 0, 0.97)
    schema = [*SCHEMA, {"name": "sex", "type": "string"}]
    view, verdict = finish(store, "run-b", 24, 0.98, rows=300, schema=schema)
    assert verdict is not None and verdict.status == "succeeded"
    payload = render_card(view).payload()
    [attachment] = payload["attachments"]
    text = json.dumps(attachment, ensure_ascii=False)
    assert "*vs last good run* `run-a`" in text
    assert "• accuracy 0.97 → 0.98 ▲ +0.01 (+1.0%)" in text
    assert "• rows 344 → 300 ▼ -44 (-12.8%)" in text
    assert "• column sex added (string)" in text
    assert ":warning: sex: 3.0% nulls, more than 1.0%" in text  # the snapshot's warning
    assert attachment["color"] == "#2EB67D"
    assert block_problem(attachment["blocks"]) is None
    assert "vs last good run run-a: accuracy 0.97 → 0.98 ▲" in render_card(view).console_text


def test_a_missed_gate_is_an_amber_regression_posted_even_with_on_success_never(
    tmp_path: Path,
) -> None:
    store = LocalFolderStore(tmp_path)
    finish(store, "run-a", 0, 0.97)
    view, verdict = finish(store, "run-b", 24, 0.80)
    assert verdict is not None and verdict.status == "succeeded_with_regression"
    assert verdict.regressions == [
        "accuracy 0.8 is under the minimum 0.9",
        "accuracy dropped 0.17 (0.97 → 0.8), more than max_drop 0.05",
    ]
    payload = render_card(view).payload()
    assert payload["blocks"][0]["text"]["text"] == ":warning: penguins: succeeded with regression"
    [attachment] = payload["attachments"]
    assert attachment["color"] == "#ECB22E"
    assert "*Gates missed*" in json.dumps(attachment)
    event = LifecycleEvent(
        run_id="run-b", pipeline="penguins", stage="pipeline", status="succeeded"
    )
    assert wants_post(event, NotifySpec(on_success="never"), None, status=view.status)[0]
    assert wants_post(event, NotifySpec(on_success="never"), None)[0] is False
    # a regression is no baseline: the next run compares with run-a again
    _, third = finish(store, "run-c", 48, 0.96)
    assert third is not None and third.comparison is not None
    assert third.comparison.baseline_run_id == "run-a"
    assert [s.status for s in list_summaries(store, "penguins")] == [
        "succeeded",
        "succeeded_with_regression",
        "succeeded",
    ]


def test_a_redelivered_final_event_keeps_its_baseline_and_writes_the_same_summary(
    tmp_path: Path,
) -> None:
    store = LocalFolderStore(tmp_path)
    finish(store, "run-a", 0, 0.97)
    finish(store, "run-c", 48, 0.95)
    first = store.read("history/penguins/run-c.json")
    finish(store, "run-b", 24, 0.96)  # a run with an earlier slot finishes later
    finish(store, "run-c", 48, 0.95)  # the redelivery
    assert store.read("history/penguins/run-c.json") == first
    summary = read_summary(store, "penguins", "run-c")
    assert summary is not None and summary.baseline_run_id == "run-a"
