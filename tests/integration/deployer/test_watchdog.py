"""The watchdog's pass with an injected clock on the GCS emulator's ledger: a stuck run is said
once (and, with `on_stuck: cancel`, a cancel command asked for once); a terminal answer from the
service is reported, not called stuck; a missed deadline then a late success is one Slack card,
updated in place ("succeeded, 40 min late", through the loopback Slack); a dropped tick is
reported for exactly its slot, and `on_missed: backfill` asks the trigger for that slot's run;
the trigger's index of open runs is what the pass reads, and the notifier's settle empties it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mlrelay.config.settings import Settings
from mlrelay.contracts import LifecycleEvent, RunCommand, RunRequest
from mlrelay.ports.container import Ports
from mlrelay.ports.protocols import JobState
from mlrelay.registry import ScheduleSpec, WatchSpec
from mlrelay.stage import keys
from mlrelay.stage.envelope import PubsubMessage
from mlrelay.stage.open_runs import list_open
from mlrelay_deployer.watchdog.sweep import run_pass
from mlrelay_notifier.notify import notify_event
from mlrelay_trigger.accept import accept_run_request
from tests.fakes.slack import FakeSlack
from tests.helpers import RecordingPublisher
from tests.integration.google_backend import new_bucket
from tests.integration.notifier.notifier_kit import bot_channel
from tests.watchdog_kit import (
    Backend,
    Clock,
    accepted,
    deps_for,
    pipeline_spec,
    registry_of,
    snapshotted,
    submitted,
    tick_run_id,
    watchdog_ports,
)

pytestmark = pytest.mark.usefixtures("gcs")

SLOT = datetime(2026, 11, 30, 5, 0, tzinfo=UTC)


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    fake = FakeSlack().start()
    yield fake
    fake.stop()


def lifecycle(publisher: RecordingPublisher) -> list[LifecycleEvent]:
    return publisher.events()


def published(publisher: RecordingPublisher, kind: str) -> list[dict[str, Any]]:
    return [json.loads(d) for _, d, a in publisher.messages if a["event_type"] == kind]


def test_a_submitted_run_past_max_runtime_is_stuck_once_and_cancelled_once(
    settings: Settings,
) -> None:
    store = new_bucket("wd")
    watch = WatchSpec(max_pending="30m", max_runtime="2h", on_stuck="cancel")
    publisher = RecordingPublisher()
    ports = watchdog_ports(
        settings, store, registry_of({"penguins": pipeline_spec(watch=watch)}), publisher
    )
    run_id = "penguins-20261130t050000z-0123456789ab"
    accepted(store, run_id, slot=SLOT, at=SLOT)
    snapshotted(store, run_id, SLOT + timedelta(minutes=5))
    submitted(store, run_id, SLOT + timedelta(minutes=6))
    backend = Backend(
        {
            run_id: JobState(
                "PIPELINE_STATE_RUNNING", "running", started_at=SLOT + timedelta(minutes=8)
            )
        }
    )
    clock = Clock(SLOT + timedelta(hours=1))

    assert run_pass(deps_for(ports, clock, backend)).findings == []  # within max_runtime
    clock.advance(hours=2)
    for _ in range(3):  # three passes (or three deliveries of one tick): one event, one cancel
        run_pass(deps_for(ports, clock, backend))

    [stuck] = [e for e in lifecycle(publisher) if e.status == "stuck"]
    assert stuck.event_type == "pipeline.stuck"
    assert stuck.details["job_state"] == "PIPELINE_STATE_RUNNING"
    assert stuck.details["limit"] == "2h"
    [cancel] = published(publisher, RunCommand.kind)
    assert cancel["action"] == "cancel" and cancel["source"] == "watchdog"
    assert cancel["run_id"] == run_id
    assert store.read(keys.stuck(run_id, "pipeline")) is not None


def test_a_terminal_answer_is_reported_not_called_stuck(settings: Settings) -> None:
    store = new_bucket("wd")
    publisher = RecordingPublisher()
    ports = watchdog_ports(settings, store, registry_of({"penguins": pipeline_spec()}), publisher)
    run_id = "penguins-20261130t050000z-00000000000a"
    accepted(store, run_id, slot=SLOT, at=SLOT)
    snapshotted(store, run_id, SLOT)
    submitted(store, run_id, SLOT)
    backend = Backend({run_id: JobState("PIPELINE_STATE_FAILED", "failed", failed_task="train")})
    clock = Clock(SLOT + timedelta(hours=12))
    deps = deps_for(ports, clock, backend)

    report = run_pass(deps)

    assert [f.kind for f in report.findings] == ["reported"]
    assert deps.report.calls == [(run_id, "penguins", "failed")]  # type: ignore[attr-defined]
    assert lifecycle(publisher) == []


def test_accepted_but_never_snapshotted_is_stuck_at_the_snapshot(settings: Settings) -> None:
    store = new_bucket("wd")
    publisher = RecordingPublisher()
    ports = watchdog_ports(settings, store, registry_of({"penguins": pipeline_spec()}), publisher)
    run_id = "penguins-20261130t050000z-00000000000b"
    accepted(store, run_id, slot=SLOT, at=SLOT)
    clock = Clock(SLOT + timedelta(minutes=29))
    run_pass(deps_for(ports, clock))
    assert lifecycle(publisher) == []
    clock.advance(minutes=2)
    run_pass(deps_for(ports, clock))
    run_pass(deps_for(ports, clock))
    assert [e.event_type for e in lifecycle(publisher)] == ["snapshot.stuck"]


def test_a_missed_deadline_then_a_late_success_is_one_card_updated_in_place(
    settings: Settings, slack: FakeSlack
) -> None:
    store = new_bucket("wd")
    registry = registry_of(
        {
            "penguins": pipeline_spec(deadline="3h").model_copy(
                update={
                    "notify": pipeline_spec().notify.model_copy(
                        update={"slack_channel": "#ml-training"}
                    )
                }
            )
        }
    )
    publisher = RecordingPublisher()
    ports = watchdog_ports(settings, store, registry, publisher)
    notifier = Ports(
        settings,
        publisher=RecordingPublisher(),
        store=store,
        registry=registry,
        chat=bot_channel(slack),
    )
    run_id = "penguins-20261130t050000z-00000000000c"
    accepted(store, run_id, slot=SLOT, at=SLOT)
    snapshotted(store, run_id, SLOT + timedelta(minutes=5))
    submitted(store, run_id, SLOT + timedelta(minutes=6))
    backend = Backend({run_id: JobState("PIPELINE_STATE_RUNNING", "running")})
    base = {"run_id": run_id, "pipeline": "penguins", "trigger": "schedule"}
    notify_event(
        LifecycleEvent(**base, stage="pipeline", status="submitted", summary="pipeline submitted"),
        notifier,
    )
    clock = Clock(SLOT + timedelta(hours=3, minutes=5))

    for _ in range(2):
        run_pass(deps_for(ports, clock, backend))
    [late] = lifecycle(publisher)
    assert late.event_type == "pipeline.deadline_missed"
    assert late.details["deadline"] == (SLOT + timedelta(hours=3)).isoformat()
    for _ in range(3):  # delivered three times: one update, one broadcast reply
        notify_event(late, notifier)
    [card, reply] = slack.channel_messages("#ml-training")
    assert card.blocks[0]["text"]["text"] == ":alarm_clock: penguins: deadline missed"
    assert [a["color"] for a in card.attachments] == ["#ECB22E"]
    assert reply.broadcast and reply.thread_ts == card.ts

    success = LifecycleEvent(
        **base,
        stage="pipeline",
        status="succeeded",
        occurred_at=SLOT + timedelta(hours=3, minutes=40),
        summary="pipeline succeeded",
        figures={"accuracy": 0.97},
    )
    notify_event(success, notifier)

    [card, *_] = slack.channel_messages("#ml-training")
    assert card.blocks[0]["text"]["text"] == ":white_check_mark: penguins: succeeded, 40 min late"
    assert len([m for m in slack.channel_messages("#ml-training") if not m.thread_ts]) == 1
    assert list_open(store) == []  # settled: out of the watchdog's index
    clock.advance(hours=1)
    assert run_pass(deps_for(ports, clock, backend)).open_runs == 0


def test_a_dropped_tick_is_missed_for_exactly_its_slot_and_backfilled(
    settings: Settings,
) -> None:
    store = new_bucket("wd")
    schedule = ScheduleSpec(cron="0 6 * * *", time_zone="Europe/Amsterdam", on_missed="backfill")
    registry = registry_of({"penguins": pipeline_spec(schedules=(schedule,))})
    publisher = RecordingPublisher()
    ports = watchdog_ports(settings, store, registry, publisher)
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    slots = [datetime(2026, 11, d, 5, 0, tzinfo=UTC) for d in (28, 29, 30)]
    dropped = slots[1]
    trigger_ports = watchdog_ports(settings, store, registry, RecordingPublisher())
    for slot in slots:  # the real trigger accepts each tick Cloud Scheduler published
        if slot == dropped:
            continue
        tick = RunRequest(
            pipeline="penguins",
            trigger="schedule",
            requested_by="cloud-scheduler",
            schedule={
                "name": schedule.name,
                "cron": schedule.cron,
                "time_zone": schedule.time_zone,
            },
        )  # type: ignore[arg-type]
        message = PubsubMessage(
            data=tick.to_json(), message_id=f"m-{slot:%d}", publish_time=slot + timedelta(seconds=2)
        )
        accept_run_request(tick, message, trigger_ports)
    assert len(list_open(store)) == 2  # the trigger indexed both open runs

    # the watchdog was deployed before these slots: its first pass started the checkpoint
    run_pass(deps_for(ports, Clock(datetime(2026, 11, 27, 12, 0, tzinfo=UTC))))
    for _ in range(3):
        run_pass(deps_for(ports, Clock(now)))

    [missed] = [e for e in lifecycle(publisher) if e.status == "missed"]
    expected = tick_run_id(registry, "penguins", schedule, dropped + timedelta(seconds=2))
    assert missed.event_type == "schedule.missed"
    assert missed.details["slot"] == dropped.isoformat()
    assert missed.details["missing_runs"] == [expected]
    assert any("paused or deleted" in cause for cause in missed.details["likely_causes"])
    [backfill] = published(publisher, RunRequest.kind)
    assert backfill["trigger"] == "backfill"
    assert backfill["logical_time"].startswith("2026-11-29T05:00:00")
