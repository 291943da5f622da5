"""Issue 14's acceptance on the cloud-shaped harness (every message delivered three times through
Pub/Sub push subscriptions): Vertex jobs that end without their exit handler (failed at start,
cancelled, a task killed) are heard of through the log relay, from LogEntry JSON as Cloud Logging
writes it, published through the Pub/Sub emulator. 0 runs without an outcome, exactly one final
Slack state per run; an unlabelled job is acknowledged with no event; the relay before and after
the reporter gives one final event."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.reliability.harness.cloud import (
    PROJECT,
    RELAY_THEN_REPORTER,
    REPORTER,
    REPORTER_THEN_RELAY,
    Harness,
    cloud_harness,
)
from tests.reliability.harness.figures import count_figures
from tests.reliability.harness.runs import finished, request_run, run_ids_of

SETTLE_SECONDS = int(os.environ.get("HARNESS_SETTLE_SECONDS", "240"))
ENDINGS = {  # pipeline run -> how its job ends
    "failed_at_start": "failed",
    "cancelled": "cancelled",
    "task_killed": "failed",
    RELAY_THEN_REPORTER: "failed",
    REPORTER_THEN_RELAY: "failed",
    REPORTER: "succeeded",
}


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    with cloud_harness(
        tmp_path_factory.mktemp("job-events"), pipelines=2, duplicates=3, max_attempts=5
    ) as h:
        yield h


def test_jobs_ended_without_their_reporter_each_get_one_outcome_and_one_final_state(
    harness: Harness,
) -> None:
    requested = {request_run(harness, f"harness-{i % 2}"): how for i, how in enumerate(ENDINGS)}
    pipelines = {key: f"harness-{i % 2}" for i, key in enumerate(requested)}

    def ending(values: dict[str, Any]) -> str:
        key = next(k for k in requested if values["run_id"].startswith(f"{pipelines[k]}-{k}-"))
        return requested[key]

    harness.ending = ending
    hand_made = f"projects/{PROJECT}/locations/europe-west4/pipelineJobs/by-hand-in-console"
    harness.vertex.add_job(hand_made, labels={"team": "ml"})
    harness.vertex.end_job(hand_made, "task_killed")  # its LogEntry goes to the relay too

    harness.wait_until(lambda: finished(harness, pipelines), SETTLE_SECONDS, "every run's end")
    harness.wait_until(lambda: not harness.deferred, SETTLE_SECONDS, "the second reporters")
    harness.wait_quiet()

    figures = count_figures(harness, pipelines)
    assert figures.lost == []
    run_ids = run_ids_of(harness, pipelines)
    assert len(run_ids) == len(ENDINGS)
    for run_id in run_ids:
        key = next(k for k in requested if run_id.startswith(f"{pipelines[k]}-{k}-"))
        how, status = requested[key], ENDINGS[requested[key]]
        story = [(e.event_type, e.details.get("reported_by")) for e in harness.events()
                 if e.run_id == run_id]  # fmt: skip
        assert figures.posts[run_id] == 1, (how, story)
        assert figures.final_states.get(run_id) == [status], (how, story)
        finals = [e for e in harness.events()
                  if e.run_id == run_id and e.event_type == f"pipeline.{status}"]  # fmt: skip
        assert finals, (how, story)
        relayed = {e.details.get("reported_by") for e in finals}
        if how in ("failed_at_start", "cancelled", "task_killed"):
            assert relayed == {"log_relay"}, (how, story)  # published once, delivered 3x
            assert len(finals) == 1, (how, story)
        if how == REPORTER_THEN_RELAY:  # the relay came after the run was settled: nothing
            assert relayed == {"exit_handler"}, (how, story)
        if how == RELAY_THEN_REPORTER:  # both said it; one Slack state (asserted above)
            assert relayed == {"log_relay", "exit_handler"}, (how, story)
    # the hand-started job's entry was acknowledged (no redelivery loop) and made no event
    assert not [e for e in harness.events() if "by-hand" in e.run_id or e.status == "rejected"]
    relay = harness.services["mlrelay-job-events"]
    assert relay.proxy.requests["200"] >= 3 * (3 + 2 + 1 + 1)  # every entry, three times
    assert "no mlrelay-run-id label" in relay.log.read_text()
    assert not harness.blobs("deadletters/")
