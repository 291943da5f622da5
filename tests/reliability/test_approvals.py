"""Signed Slack clicks on the cloud-shaped harness (three push subscriptions per function, the
GCS and Pub/Sub emulators, the loopback Vertex AI and Slack): a pipeline with `approval:
before_deploy` is held after its snapshot with an amber card; a signed Approve click posted to
the real interactions app (functions-framework) releases it once, the deployer's
`mlrelay-approvals` function behind three subscriptions starting one Vertex AI job; a signed
Cancel click on a running job ends it with one CancelPipelineJob and one `cancelled` card."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlrelay.config.env import Secret
from mlrelay.config.interactions import InteractionSettings
from mlrelay.config.settings import Settings
from mlrelay.ports.container import Ports, use_ports
from tests.helpers import SLACK_USER, button_body, http_function_client, signed_headers
from tests.reliability.harness.cloud import BUCKET, CHANNEL, PROJECT, Harness, cloud_harness
from tests.reliability.harness.runs import request_run

SETTLE_SECONDS = int(os.environ.get("HARNESS_SETTLE_SECONDS", "240"))
SECRET = "a7" * 16


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    with cloud_harness(
        tmp_path_factory.mktemp("approvals"), pipelines=1, duplicates=3, max_attempts=5
    ) as h:
        registry = h.workdir / "registry.yaml"
        text = registry.read_text().replace(
            "    template: penguins_pipeline.yaml\n",
            "    template: penguins_pipeline.yaml\n    approval: before_deploy\n"
            f"    actions:\n      allowed_users: [{SLACK_USER}]\n",
        )
        assert "approval: before_deploy" in text
        registry.write_text(text)  # every function reads the registry on each message
        yield h


def click(harness: Harness, tmp_path: Path, run_id: str, action: str, times: int) -> list[Any]:
    """Signed `block_actions` posts to the interactions app, as Slack sends a button click."""
    settings = Settings(
        mode="google",
        project=PROJECT,
        bucket=BUCKET,
        home=tmp_path,
        registry_path=harness.workdir / "registry.yaml",
        sections=(InteractionSettings(signing_secret=Secret(SECRET)),),
    )
    use_ports(Ports(settings))
    try:
        client = http_function_client("interactions", "on_slack_request")
        body = button_body(run_id, action)
        return [
            client.post("/", data=body, headers=signed_headers(SECRET, body)) for _ in range(times)
        ]
    finally:
        use_ports(None)


def top_cards(harness: Harness, run_id: str) -> list[Any]:
    return [
        m
        for m in harness.slack.channel_messages(CHANNEL)
        if m.thread_ts is None and run_id in m.text
    ]


def headline(harness: Harness, run_id: str) -> str:
    cards = top_cards(harness, run_id)
    return str(cards[0].blocks[0]["text"]["text"]) if len(cards) == 1 else ""


def held_run(harness: Harness) -> str:
    key = request_run(harness, "harness-0")
    harness.wait_until(
        lambda: any(
            e.event_type == "pipeline.held" and f"-{key}-" in e.run_id for e in harness.events()
        ),
        SETTLE_SECONDS,
        "the run held",
    )
    [run_id] = {e.run_id for e in harness.events() if f"-{key}-" in e.run_id}
    harness.wait_until(
        lambda: headline(harness, run_id).endswith("harness-0: waiting for approval"),
        60,
        "the held card",
    )
    return run_id


def creates_of(harness: Harness, run_id: str) -> list[Any]:
    """CreatePipelineJob calls for the run (its job id is the run id)."""
    return [r for r in harness.vertex.creates() if run_id in str(r.query)]


def test_approve_releases_a_held_run_once(harness: Harness, tmp_path: Path) -> None:
    run_id = held_run(harness)
    harness.wait_quiet()
    assert not [v for v in harness.pipeline_jobs().values() if v["run_id"] == run_id]
    card = top_cards(harness, run_id)[0]
    shown = json.dumps(card.attachments)
    assert "Waiting for approval" in shown and "rows" in shown and "fingerprint" in shown

    answers = click(harness, tmp_path, run_id, "approve", 2)  # a double click
    assert [a.status_code for a in answers] == [200, 200]
    assert "already requested" in answers[1].get_data(as_text=True)

    harness.wait_until(
        lambda: headline(harness, run_id).endswith("harness-0: succeeded"),
        SETTLE_SECONDS,
        "the approved run's success",
    )
    harness.wait_quiet()
    events = [e for e in harness.events() if e.run_id == run_id]
    jobs = [v for v in harness.pipeline_jobs().values() if v["run_id"] == run_id]
    assert len(jobs) == 1  # a double click, three deliveries of the command: one job
    assert len(creates_of(harness, run_id)) == 1
    assert {e.event_type for e in events if e.status == "rejected"} == set()
    decision = harness.read_json(f"runs/{run_id}/decision.json")["result"]
    assert decision["decision"] == "approved"
    assert decision["command"]["requested_by"] == f"slack:{SLACK_USER}"
    cards = top_cards(harness, run_id)
    assert len(cards) == 1, [c.text for c in cards]  # the held card moved on in place


def test_cancel_ends_a_running_job_with_one_cancelled_card(
    harness: Harness, tmp_path: Path
) -> None:
    harness.complete_jobs = False  # the job keeps running until it is cancelled
    try:
        run_id = held_run(harness)
        [approved] = click(harness, tmp_path, run_id, "approve", 1)
        assert approved.status_code == 200
        harness.wait_until(
            lambda: "pipeline running" in headline(harness, run_id),
            SETTLE_SECONDS,
            "the running card",
        )
        harness.wait_quiet()

        answers = click(harness, tmp_path, run_id, "cancel", 3)  # clicked three times
        assert [a.status_code for a in answers] == [200, 200, 200]
        harness.wait_until(
            lambda: headline(harness, run_id).endswith("harness-0: cancelled"),
            SETTLE_SECONDS,
            "the cancelled card",
        )
        harness.wait_quiet()
    finally:
        harness.complete_jobs = True

    cancels = [r for r in harness.vertex.cancels() if r.path.endswith(f"{run_id}:cancel")]
    assert len(cancels) == 1, cancels  # three clicks, three subscriptions: one cancel
    cancelled = [e for e in harness.events() if e.run_id == run_id and e.status == "cancelled"]
    assert {e.details["command"]["requested_by"] for e in cancelled} == {f"slack:{SLACK_USER}"}
    assert len(top_cards(harness, run_id)) == 1
    [card] = top_cards(harness, run_id)
    replies = [
        m
        for m in harness.slack.channel_messages(CHANNEL)
        if m.thread_ts == card.ts and "pipeline.cancelled" in m.text
    ]
    assert len(replies) == 1  # one cancelled message in the run's thread
