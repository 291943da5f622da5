"""A stage failing until its dead-letter threshold on the cloud-shaped harness (one push
subscription per function, Pub/Sub emulator dead-letter policy, max 5 deliveries): the message is
dead-lettered, kept in the bucket and announced; `mlrelay deadletters list` shows it, and after the
fix `mlrelay deadletters replay ID` sends it back to its topic and the run completes, once."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner

from mlrelay_tools.cli.main import cli
from tests.reliability.harness.cloud import BUCKET, PROJECT, SLACK_TOKEN, Harness, cloud_harness
from tests.reliability.harness.figures import count_figures
from tests.reliability.harness.runs import (
    assert_exactly_once,
    finished,
    read_blob,
    request_run,
    run_ids_of,
)

SETTLE_SECONDS = int(os.environ.get("HARNESS_SETTLE_SECONDS", "240"))


@pytest.fixture(scope="module")
def single(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    """One push subscription per function: a failing stage gives exactly one dead letter."""
    with cloud_harness(tmp_path_factory.mktemp("single"), pipelines=2, duplicates=1) as h:
        yield h


def cli_env(harness: Harness) -> dict[str, str]:
    return {
        "MLRELAY_MODE": "google",
        "GOOGLE_CLOUD_PROJECT": PROJECT,
        "MLRELAY_BUCKET": BUCKET,
        "MLRELAY_REGISTRY": str(harness.workdir / "registry.yaml"),
    }


def test_a_stage_failing_past_its_threshold_is_dead_lettered_and_a_replay_completes_the_run(
    single: Harness,
) -> None:
    harness = single
    deployer = harness.services["mlrelay-deployer"].proxy
    deployer.failing = 503
    requested = {request_run(harness, "harness-1"): "harness-1"}
    try:
        harness.wait_until(
            lambda: any("mlrelay-deployer" in n for n in harness.blobs("deadletters/")),
            SETTLE_SECONDS,
            "a dead letter from the deployer's subscription",
        )
    finally:
        deployer.failing = None  # the fix
    assert deployer.requests["503"] == 5  # the subscription's max_delivery_attempts
    [run_id] = run_ids_of(harness, requested)
    assert count_figures(harness, requested).jobs[run_id] == 0
    harness.wait_until(
        lambda: any(run_id in m.text and "dead_lettered" in m.text for m in harness.slack.messages),
        30,
        "the dead letter's Slack message",
    )
    runner = CliRunner()
    listed = runner.invoke(cli, ["deadletters", "list", "--pending"], env=cli_env(harness))
    assert listed.exit_code == 0, listed.output
    letters = [
        json.loads(read_blob(harness, n))
        for n in harness.blobs("deadletters/")
        if json.loads(read_blob(harness, n))["message"]["attributes"].get("run_id") == run_id
    ]
    first = letters[0]["message"]["message_id"]
    assert first in listed.output and letters[0]["topic"] == harness.topics.deploys
    replayed = runner.invoke(cli, ["deadletters", "replay", first], env=cli_env(harness))
    assert replayed.exit_code == 0, replayed.output
    harness.wait_until(lambda: finished(harness, requested), SETTLE_SECONDS, "the replayed run")
    assert_exactly_once(harness, requested)
    again = runner.invoke(cli, ["deadletters", "replay", first], env=cli_env(harness))
    assert again.exit_code != 0 and "--force" in again.output  # a second replay is explicit
    figures = count_figures(harness, requested)
    assert figures.replayed == 1 and figures.alerts[run_id] == 1
    assert SLACK_TOKEN not in harness.logs()  # nor in the dead-letter function's lines


def test_a_bad_release_redelivers_every_run_and_rejects_none_until_the_fix(
    single: Harness,
) -> None:
    """A release whose registry does not parse: the trigger answers 503 to every delivery (one
    configuration_error line in its log), the emulator redelivers until the subscription's
    attempts run out and dead-letters the message; nothing lands in rejected/. After the fix a
    replay completes the run."""
    harness = single
    registry = harness.workdir / "registry.yaml"
    good = registry.read_text()
    trigger = harness.services["mlrelay-trigger"]
    rejected_before = harness.blobs("rejected/")
    registry.write_text("pipelines:\n  harness-1: [unclosed\n")
    harness.kill_service("mlrelay-trigger")
    harness.start_service("mlrelay-trigger")  # a new instance of the bad release
    answered_503 = trigger.proxy.requests["503"]
    requested = {request_run(harness, "harness-1"): "harness-1"}
    try:
        harness.wait_until(
            lambda: any("mlrelay-trigger" in n for n in harness.blobs("deadletters/")),
            SETTLE_SECONDS,
            "a dead letter from the trigger's subscription",
        )
    finally:
        registry.write_text(good)  # the fix, then a new instance
        harness.kill_service("mlrelay-trigger")
        harness.start_service("mlrelay-trigger")
    assert trigger.proxy.requests["503"] - answered_503 == 5  # every delivery redelivered
    assert harness.blobs("rejected/") == rejected_before  # nothing valid was rejected
    log = trigger.log.read_text()
    assert log.count('"configuration_error"') == 1 and "Traceback" not in log
    [letter] = [
        json.loads(read_blob(harness, n))
        for n in harness.blobs("deadletters/")
        if "mlrelay-trigger" in n
    ]
    replayed = runner_invoke(["deadletters", "replay", letter["message"]["message_id"]], harness)
    assert replayed.exit_code == 0, replayed.output
    harness.wait_until(lambda: finished(harness, requested), SETTLE_SECONDS, "the replayed run")
    assert_exactly_once(harness, requested)


def runner_invoke(args: list[str], harness: Harness) -> Any:
    return CliRunner().invoke(cli, args, env=cli_env(harness))
