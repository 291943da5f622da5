"""mlrelay's completion reporter (the exit-handler component) writing into a folder outbox: the
final event of a run, with the failed task named from Vertex AI's final status."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlrelay.contracts import LifecycleEvent
from mlrelay.kfp_components import report_pipeline_completion
from tests.helpers import VERTEX_FAILURE, final_status


def read_outbox(folder: Path, run_id: str) -> tuple[LifecycleEvent, dict[str, str]]:
    document = json.loads((folder / f"{run_id}.json").read_text())
    return LifecycleEvent.model_validate(document["data"]), document["attributes"]


def test_reporter_writes_a_valid_succeeded_event_with_mlrelay_attributes(tmp_path: Path) -> None:
    report_pipeline_completion(
        status=final_status("SUCCEEDED"), run_id="penguins-x-1", pipeline="penguins",
        destination=str(tmp_path),
    )  # fmt: skip

    event, attributes = read_outbox(tmp_path, "penguins-x-1")
    assert event.event_type == "pipeline.succeeded"
    assert (event.run_id, event.pipeline, event.error) == ("penguins-x-1", "penguins", None)
    assert event.details["reported_by"] == "exit_handler"
    assert attributes == event.attributes()


def test_reporter_names_the_failed_task_from_vertex_final_status(tmp_path: Path) -> None:
    report_pipeline_completion(
        status=final_status("FAILED", VERTEX_FAILURE), run_id="penguins-x-2", pipeline="penguins",
        destination=tmp_path.as_uri(),
    )  # fmt: skip

    event, attributes = read_outbox(tmp_path, "penguins-x-2")
    assert event.event_type == "pipeline.failed"
    assert event.details["failed_task"] == "train"
    assert event.summary == "pipeline failed at train"
    assert event.error == VERTEX_FAILURE
    assert attributes == event.attributes()


def test_reporter_with_no_destination_reports_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    report_pipeline_completion(
        status=final_status("CANCELLED", "cancelled by user"), run_id="r-1", pipeline="p",
        destination="",
    )  # fmt: skip
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("state", ["CANCELLED", "CANCELED"])  # Vertex AI, a KFP host
def test_reporter_says_cancelled_for_a_cancelled_job_as_the_log_relay_does(
    tmp_path: Path, state: str
) -> None:
    report_pipeline_completion(
        status=final_status(state, "cancelled by user"), run_id="penguins-x-3",
        pipeline="penguins", destination=str(tmp_path),
    )  # fmt: skip

    event, attributes = read_outbox(tmp_path, "penguins-x-3")
    assert event.event_type == "pipeline.cancelled"
    assert event.summary == "pipeline penguins was cancelled"
    assert event.error is None and event.details["final_state"] == state
    assert attributes == event.attributes()
