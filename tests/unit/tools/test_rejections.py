"""Rejected messages for operators (mlrelay_tools.rejections): what was refused is listed with
its reason, and a replay (kept or corrected) goes back to the topic its stage reads, once."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from cloudevents.http import CloudEvent

from mlrelay.config.settings import Settings
from mlrelay.errors import PermanentError
from mlrelay.ports.container import use_ports
from mlrelay.stage import keys
from mlrelay.stage.ledger import read_run
from mlrelay_tools.rejections import list_rejections, replay_rejection
from tests.helpers import RecordingChat, make_runtime, publish_run


def ack_without_work(handler: Callable[[CloudEvent], None]) -> Callable[[CloudEvent], None]:
    return lambda event: None


def test_a_rejected_run_request_is_listed_and_a_corrected_replay_runs_once(
    settings: Settings, channel: RecordingChat
) -> None:
    runtime = make_runtime(settings, channel, wrap={"mlrelay-snapshotter": ack_without_work})
    try:
        publish_run(runtime, {"pipeline": "no-such-pipeline", "dedup_key": "typo"})
        runtime.bus.run_until_idle()
        [rejection] = list_rejections(runtime.store, settings.topics)
        assert rejection.stage == "trigger" and rejection.topic == settings.topics.runs
        assert rejection.field == "pipeline" and "no-such-pipeline" in rejection.reason
        assert rejection.rejected_at and json.loads(rejection.data)["dedup_key"] == "typo"

        fixed = json.dumps({"pipeline": "penguins", "dedup_key": "typo"}).encode()
        replayed = replay_rejection(
            runtime.store, runtime.bus, settings.topics, rejection.id, data=fixed
        )
        runtime.bus.run_until_idle()
        assert replayed.replayed_at and replayed.replayed_as
        runs = [r for r in runtime.store.list(keys.RUNS) if "-typo-" in r]
        [run_id] = {key.split("/")[1] for key in runs}
        assert read_run(runtime.store, run_id)["trigger"].state == "done"
        with pytest.raises(PermanentError, match="--force"):
            replay_rejection(runtime.store, runtime.bus, settings.topics, rejection.id)
        assert list_rejections(runtime.store, settings.topics, include_replayed=False) == []
    finally:
        use_ports(None)


def test_an_older_record_without_a_topic_replays_to_the_topic_its_stage_reads(
    settings: Settings, channel: RecordingChat
) -> None:
    runtime = make_runtime(settings, channel)
    record = {"reason": "x", "field": "run_id", "stage": "snapshot", "message": {"data_base64": ""}}
    runtime.store.create(keys.rejected("old-1"), json.dumps(record).encode())
    sent: list[str] = []

    class Publisher:
        def publish(self, topic: str, data: bytes, attributes: dict[str, str]) -> str:
            sent.append(topic)
            return "new-1"

    try:
        replay_rejection(runtime.store, Publisher(), settings.topics, "old-1")
    finally:
        use_ports(None)
    assert sent == [settings.topics.snapshots]
    with pytest.raises(PermanentError, match="not a rejected message"):
        replay_rejection(runtime.store, Publisher(), settings.topics, "nope")
