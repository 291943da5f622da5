"""Cancel on the cloud-shaped harness: a running Vertex AI job, `mlrelay cancel` in google mode
(the Slack button's claim and RunCommand, published to the Pub/Sub emulator), the deployer's
`mlrelay-cancel` function behind three push subscriptions filtered on `attributes.action =
"cancel"`, and the notifier posting to the loopback Slack: one CancelPipelineJob, one grey
`cancelled` card; the job's exit handler reporting its end afterwards changes nothing."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from mlrelay.kfp_components.completion import report_pipeline_completion
from mlrelay.ports.container import use_ports
from mlrelay_tools.cli.main import cli
from tests.reliability.harness.cloud import CHANNEL, Harness, cloud_harness
from tests.reliability.harness.runs import request_run

SETTLE_SECONDS = int(os.environ.get("HARNESS_SETTLE_SECONDS", "240"))


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    # the functions import this checkout's code when the interpreter is pointed at it
    path = {"PYTHONPATH": os.environ["PYTHONPATH"]} if os.environ.get("PYTHONPATH") else {}
    with cloud_harness(
        tmp_path_factory.mktemp("cancel"),
        pipelines=1,
        duplicates=3,
        max_attempts=5,
        env_overrides=path,
    ) as h:
        h.complete_jobs = False  # the job keeps running until it is cancelled
        yield h


def headline(harness: Harness) -> str:
    [parent, *_] = [m for m in harness.slack.channel_messages(CHANNEL) if m.thread_ts is None]
    return str(parent.blocks[0]["text"]["text"])


def test_a_running_job_cancelled_from_the_terminal_ends_with_one_cancelled_card(
    harness: Harness,
) -> None:
    key = request_run(harness, "harness-0")
    harness.wait_until(
        lambda: any(
            e.event_type == "pipeline.submitted" and f"-{key}-" in e.run_id
            for e in harness.events()
        ),
        SETTLE_SECONDS,
        "the job submitted",
    )
    [run_id] = {e.run_id for e in harness.events() if f"-{key}-" in e.run_id}
    harness.wait_until(lambda: "pipeline running" in headline(harness), 60, "the running card")

    try:
        done = CliRunner().invoke(cli, ["cancel", run_id, "--json"], env=harness.env)
    finally:
        use_ports(None)
    assert done.exit_code == 0, done.output
    asked = json.loads(done.stdout)
    assert asked["outcome"] == "requested" and asked["first"] is True
    harness.wait_until(lambda: "cancelled" in headline(harness), SETTLE_SECONDS, "the card")
    harness.wait_quiet()

    cancels = [r for r in harness.vertex.cancels() if r.path.endswith(f"{run_id}:cancel")]
    assert len(cancels) == 1, cancels  # three push subscriptions, one cancel
    [name] = [n for n in harness.vertex.jobs if n.endswith(f"/pipelineJobs/{run_id}")]
    assert harness.vertex.jobs[name]["state"] == "PIPELINE_STATE_CANCELLING"
    cancelled = [e for e in harness.events() if e.run_id == run_id and e.status == "cancelled"]
    assert {e.details["command"]["source"] for e in cancelled} == {"cli"}
    assert headline(harness).endswith("harness-0: cancelled")
    replies = [
        m
        for m in harness.slack.channel_messages(CHANNEL)
        if m.thread_ts is not None and "pipeline.cancelled" in m.text
    ]
    assert len(replies) == 1 and not replies[0].broadcast

    # the service finishes the cancel; the exit handler reports the run's end as it does
    harness.vertex.finish_cancelling()
    values = harness.pipeline_jobs()[name]
    report_pipeline_completion(
        status=SimpleNamespace(
            state="CANCELLED", error_message="cancelled", pipeline_job_resource_name=name
        ),
        run_id=values["run_id"],
        pipeline=values["mlrelay_pipeline"],
        destination=values["mlrelay_lifecycle_destination"],
    )
    harness.wait_until(  # it says cancelled too (the log relay's word): the same notification
        lambda: any(
            e.run_id == run_id
            and e.status == "cancelled"
            and e.details.get("reported_by") == "exit_handler"
            for e in harness.events()
        ),
        60,
        "the exit handler's report",
    )
    harness.wait_quiet()
    assert headline(harness).endswith("harness-0: cancelled")
    replies = [
        m
        for m in harness.slack.channel_messages(CHANNEL)
        if m.thread_ts is not None and "pipeline." in m.text and "cancelled" not in m.text
    ]
    assert not [m for m in replies if "pipeline.failed" in m.text or "succeeded" in m.text]
    assert len([m for m in harness.slack.channel_messages(CHANNEL)
                if m.thread_ts is not None and "pipeline.cancelled" in m.text]) == 1  # fmt: skip
