"""What each backend's `job_state` makes of what its service says: a Vertex AI PipelineJob (as
the `aiplatform_v1` client parses the service's JSON), a KFP run, a local run's folder; and the
final event `report_job_outcome` words from it. The calls themselves run against the loopback
services in tests/integration/deployer."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from google.cloud.aiplatform_v1 import PipelineJob

from mlrelay.ports.protocols import JobState
from mlrelay.registry.backends import VertexOptions
from mlrelay_deployer.job_outcome import outcome_event
from mlrelay_deployer.kfp_local import CANCEL_FILE, LOG_FILE, PID_FILE, RESULT_FILE, local_job_state
from mlrelay_deployer.vertex_backend import state_of_job

OPTIONS = VertexOptions(project="test-proj", region="europe-west4")
NAME = "projects/test-proj/locations/europe-west4/pipelineJobs/penguins-1-0123456789ab"


def job(**fields: object) -> PipelineJob:
    return PipelineJob.from_json(json.dumps({"name": NAME, **fields}))


def test_a_killed_task_is_named_with_its_own_error_not_the_exit_handler_group() -> None:
    state = state_of_job(
        job(
            state="PIPELINE_STATE_FAILED",
            startTime="2026-11-25T06:10:00Z",
            endTime="2026-11-25T06:30:00Z",
            error={"code": 9, "message": "The DAG failed because some tasks failed."},
            jobDetail={
                "taskDetails": [
                    {"taskId": "1", "taskName": "root", "state": "FAILED"},
                    {
                        "taskId": "2",
                        "parentTaskId": "1",
                        "taskName": "exit-handler-1",
                        "state": "FAILED",
                    },
                    {
                        "taskId": "3",
                        "parentTaskId": "2",
                        "taskName": "train",
                        "state": "FAILED",
                        "error": {"code": 9, "message": "exited with status 137"},
                    },
                ]
            },
        ),
        OPTIONS,
    )

    assert state == JobState(
        state="PIPELINE_STATE_FAILED",
        status="failed",
        failed_task="train",
        error="exited with status 137",
        started_at=datetime(2026, 11, 25, 6, 10, tzinfo=UTC),
        ended_at=datetime(2026, 11, 25, 6, 30, tzinfo=UTC),
        links={
            "console": "https://console.cloud.google.com/vertex-ai/locations/europe-west4/"
            "pipelines/runs/penguins-1-0123456789ab?project=test-proj"
        },
    )
    assert state.terminal


def test_a_job_that_failed_at_start_has_the_jobs_error_and_no_task_or_start() -> None:
    state = state_of_job(
        job(state="PIPELINE_STATE_FAILED", endTime="2026-11-25T06:30:00Z",
            error={"code": 8, "message": "Quota exceeded"}),
        OPTIONS,
    )  # fmt: skip

    assert (state.status, state.failed_task, state.error) == ("failed", None, "Quota exceeded")
    assert state.started_at is None and state.ended_at is not None


@pytest.mark.parametrize(
    ("service", "status", "terminal"),
    [("PIPELINE_STATE_QUEUED", "pending", False), ("PIPELINE_STATE_PENDING", "pending", False),
     ("PIPELINE_STATE_RUNNING", "running", False), ("PIPELINE_STATE_CANCELLING", "running", False),
     ("PIPELINE_STATE_SUCCEEDED", "succeeded", True),
     ("PIPELINE_STATE_CANCELLED", "cancelled", True)],
)  # fmt: skip
def test_vertex_states_map_to_mlrelays_words(service: str, status: str, terminal: bool) -> None:
    state = state_of_job(job(state=service), OPTIONS)

    assert (state.state, state.status, state.terminal) == (service, status, terminal)


def test_outcome_event_is_worded_like_the_exit_handlers_report() -> None:
    ended = JobState(
        "PIPELINE_STATE_FAILED", "failed", "train", "exited with status 137",
        datetime(2026, 11, 25, 6, 10, tzinfo=UTC), datetime(2026, 11, 25, 6, 30, tzinfo=UTC),
        {"console": "https://console"},
    )  # fmt: skip

    event = outcome_event(run_id="penguins-1-x", pipeline="penguins", state=ended,
                          reported_by="watchdog")  # fmt: skip

    assert event.event_type == "pipeline.failed"
    assert event.summary == "pipeline failed at train"
    assert event.error == "exited with status 137"
    assert event.details == {
        "reported_by": "watchdog",
        "final_state": "PIPELINE_STATE_FAILED",
        "failed_task": "train",
        "ended_at": "2026-11-25T06:30:00+00:00",
    }
    assert event.figures == {"duration_seconds": 1200.0}
    assert event.links == {"console": "https://console"}
    cancelled = outcome_event(
        run_id="penguins-1-x", pipeline="penguins",
        state=JobState("PIPELINE_STATE_CANCELLED", "cancelled"), reported_by="log_relay",
    )  # fmt: skip
    assert (cancelled.event_type, cancelled.error) == ("pipeline.cancelled", None)
    assert cancelled.summary == "pipeline penguins was cancelled"


def test_a_local_run_never_started_is_no_job(tmp_path: Path) -> None:
    assert local_job_state(tmp_path / "nothing-here") is None


def test_a_local_run_whose_child_is_alive_is_running(tmp_path: Path) -> None:
    (tmp_path / LOG_FILE).write_text("starting\n")
    (tmp_path / PID_FILE).write_text(str(os.getpid()))  # a process that is alive: this one

    state = local_job_state(tmp_path)

    assert state is not None and (state.status, state.terminal) == ("running", False)


def test_a_local_run_whose_child_died_without_a_result_failed_and_says_so(tmp_path: Path) -> None:
    (tmp_path / LOG_FILE).write_text("Killed\n")
    (tmp_path / PID_FILE).write_text(str(2**22 + 1))  # above Linux's pid_max: no such process

    state = local_job_state(tmp_path)

    assert state is not None and state.status == "failed" and state.terminal
    assert state.error is not None and "ended without a result" in state.error
    assert "Killed" in state.error


def test_a_local_run_reports_its_result_or_its_cancel(tmp_path: Path) -> None:
    (tmp_path / LOG_FILE).write_text("done\n")
    (tmp_path / RESULT_FILE).write_text(
        json.dumps({"status": "failed", "failed_task": "train", "error": "boom"})
    )

    state = local_job_state(tmp_path)
    assert state is not None
    assert (state.status, state.failed_task, state.error) == ("failed", "train", "boom")

    (tmp_path / CANCEL_FILE).write_text("{}")
    cancelled = local_job_state(tmp_path)
    assert cancelled is not None and cancelled.status == "cancelled"
