"""Issue 18's custom-job acceptance on the cloud-shaped harness (every message delivered three
times through Pub/Sub push subscriptions, the services as Cloud Functions run them): a
`backend: vertex_custom_job` pipeline makes one CustomJob per run on the loopback Vertex AI; a
job that succeeds (its metrics in `jobs/<run_id>/metrics.json` in the GCS emulator) and one that
dies (its replica killed) are each heard of through the log relay, from the service's `ml_job`
LogEntry published through the Pub/Sub emulator: one final event and one final Slack state each,
the success with the job's metrics."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest

from tests.fakes.vertex_custom_jobs import OOM
from tests.reliability.harness.cloud import BUCKET, CHANNEL, PROJECT, Harness, cloud_harness
from tests.reliability.harness.figures import count_figures
from tests.reliability.harness.runs import finished, request_run, run_ids_of

SETTLE_SECONDS = int(os.environ.get("HARNESS_SETTLE_SECONDS", "240"))
CUSTOM_JOB_PIPELINE = """\
  harness-job:
    source:
      sql: >-
        SELECT species, island, bill_length_mm, year FROM `demo.penguins`
        WHERE year >= @min_year
      query_parameters: [min_year]
    snapshot_dataset: harness_job
    backend: vertex_custom_job
    vertex:
      project: <project>
      region: europe-west4
    job:
      image: europe-docker.pkg.dev/<project>/ml/penguins-train:1.0
      command: [python, -m, penguins.train]
      args: ["--manifest={snapshot_manifest_uri}", "--out={output_dir}"]
    custom_job:
      worker_pools: [{machine_type: n1-standard-4}]
      spot: true
      timeout: 2h
    parameters: {min_year: 2007}
    overridable: [min_year]
    notify:
      slack_channel: "<channel>"
      on_success: always
""".replace("<project>", PROJECT).replace("<channel>", CHANNEL)


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    with cloud_harness(
        tmp_path_factory.mktemp("custom-jobs"),
        pipelines=1,
        duplicates=3,
        max_attempts=5,
        extra_registry=CUSTOM_JOB_PIPELINE,
    ) as h:
        yield h


def custom_jobs(harness: Harness) -> dict[str, str]:
    """Run id -> the name of its custom job, of every custom job the loopback Vertex AI holds."""
    jobs = harness.vertex.custom_jobs
    return {str(jobs.job(name)["displayName"]): name for name in jobs.names()}


def test_custom_job_runs_each_end_with_one_final_card_through_the_relay(harness: Harness) -> None:
    requested = {request_run(harness, "harness-job", min_year=year): "harness-job"
                 for year in (2007, 2008)}  # fmt: skip
    harness.wait_until(lambda: len(custom_jobs(harness)) >= 2, SETTLE_SECONDS, "two custom jobs")
    harness.wait_quiet()
    jobs = custom_jobs(harness)
    succeeding, dying = sorted(jobs)
    # the job does what the job contract says, then exits 0; the other's replica is killed
    harness.storage().bucket(BUCKET).blob(f"jobs/{succeeding}/metrics.json").upload_from_string(
        json.dumps({"accuracy": 0.96})
    )
    harness.vertex.custom_jobs.end_job(jobs[succeeding], "succeeded")
    harness.vertex.custom_jobs.end_job(jobs[dying], "failed")

    harness.wait_until(lambda: finished(harness, requested), SETTLE_SECONDS, "both runs' ends")
    harness.wait_quiet()

    figures = count_figures(harness, requested)
    assert figures.lost == []
    run_ids = run_ids_of(harness, requested)
    assert run_ids == {succeeding, dying}
    assert len(harness.vertex.custom_jobs.names()) == 2  # one custom job per run, 3x delivery
    for run_id, status in ((succeeding, "succeeded"), (dying, "failed")):
        story = [(e.event_type, e.details.get("reported_by")) for e in harness.events()
                 if e.run_id == run_id]  # fmt: skip
        assert figures.posts[run_id] == 1, story
        assert figures.final_states.get(run_id) == [status], story
        finals = [e for e in harness.events()
                  if e.run_id == run_id and e.event_type == f"pipeline.{status}"]  # fmt: skip
        assert len(finals) == 1, story  # published once (each delivered three times)
        [event] = finals
        assert event.details["reported_by"] == "log_relay"
        if status == "succeeded":
            assert event.figures["accuracy"] == 0.96
            assert event.details["outputs"] == {"model": f"gs://{BUCKET}/jobs/{run_id}/model/"}
        else:
            assert event.error == OOM
    relay = harness.services["mlrelay-job-events"]
    assert relay.proxy.requests["200"] >= 3 * 2  # each entry three times, all acknowledged
    assert not harness.blobs("deadletters/")
