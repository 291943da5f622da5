"""The notifier against a loopback Slack, through the real slack_sdk clients and the real
notifier entry points on the local bus: update in place, dedup, policy, pacing, 429 / 500,
dead letters and redaction."""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time

import pytest

from mlrelay.config.settings import Settings
from mlrelay.contracts import LifecycleEvent
from mlrelay_notifier.errors import ChatUnavailable
from mlrelay_notifier.render import ChatMessage
from mlrelay_notifier.slack_clients import SlackWebhookChat
from mlrelay_tools.local.runtime import LocalRuntime
from tests.fakes.slack import FakeSlack, Recorded
from tests.helpers import make_runtime
from tests.integration.notifier.notifier_kit import (
    FAST,
    bot_channel,
    registry_with,
    run_stages,
    webhook_channel,
)


def start(settings: Settings, chat: object, **notify: object) -> LocalRuntime:
    return make_runtime(settings, chat, registry=registry_with(**notify))  # type: ignore[arg-type]


def gaps(calls: list[Recorded]) -> list[float]:
    times = [c.at for c in calls]
    return [b - a for a, b in itertools.pairwise(times)]


def failed_event(run_id: str) -> LifecycleEvent:
    return LifecycleEvent(
        run_id=run_id,
        pipeline="penguins",
        stage="pipeline",
        status="failed",
        summary="pipeline failed at train-model",
        error="MemoryError",
    )


# --- bot token: one message per run --------------------------------------------------------


def test_bot_mode_updates_the_runs_message_in_place_with_details_in_its_thread(
    settings: Settings, slack: FakeSlack
) -> None:
    runtime = start(settings, bot_channel(slack), slack_channel="#ml-training")
    run_stages(runtime, "penguins-demo-1")
    methods = [c.method for c in slack.delivered()]
    assert methods == [
        "chat.postMessage",  # accepted: the run's message
        "chat.update",  # snapshot ready
        "chat.postMessage",  # ... and its reply in the thread
        "chat.update",  # pipeline running
        "chat.postMessage",
        "chat.update",  # succeeded
        "chat.postMessage",
    ]
    [parent, *replies] = slack.channel_messages("#ml-training")
    assert parent.thread_ts is None and parent.updates == 3
    assert parent.blocks[0]["text"]["text"] == ":white_check_mark: penguins: succeeded"
    assert "`accuracy=0.97`" in json.dumps(parent.attachments)
    assert [r.thread_ts for r in replies] == [parent.ts] * 3
    assert [r.text.split(" · ")[1] for r in replies] == [
        "snapshot.completed",
        "pipeline.submitted",
        "pipeline.succeeded",
    ]
    assert not any(r.broadcast for r in replies)
    updates = [c.body for c in slack.delivered("chat.update")]
    assert [u["blocks"][0]["text"]["text"] for u in updates] == [
        ":package: penguins: snapshot ready",
        ":rocket: penguins: pipeline running",
        ":white_check_mark: penguins: succeeded",
    ]
    kept = json.loads(runtime.store.read("notifications/penguins-demo-1/message.json") or b"")
    assert kept["ts"] == parent.ts and kept["status"] == "succeeded"


def test_bot_mode_failure_is_broadcast_from_the_thread(
    settings: Settings, slack: FakeSlack
) -> None:
    runtime = start(settings, bot_channel(slack), slack_channel="#ml-training")
    run_stages(runtime, "penguins-demo-2", outcome="failed")
    [parent, *replies] = slack.channel_messages("#ml-training")
    assert parent.blocks[0]["text"]["text"] == ":x: penguins: failed"
    assert "MemoryError" in json.dumps(parent.attachments)
    assert replies[-1].broadcast and "MemoryError" in replies[-1].blocks[0]["text"]["text"]


def test_bot_mode_a_missed_gate_is_an_amber_card_broadcast_like_a_failure_under_never(
    settings: Settings, slack: FakeSlack
) -> None:
    runtime = start(settings, bot_channel(slack), slack_channel="#ml-training", on_success="never")
    run_stages(runtime, "penguins-good-1")
    assert slack.calls() == []  # a success under `never`: silence
    run_stages(runtime, "penguins-worse-1", accuracy=0.85)  # the demo gates accuracy >= 0.9
    [message] = slack.channel_messages("#ml-training")  # one full message, as for a failure
    assert message.blocks[0]["text"]["text"] == ":warning: penguins: succeeded with regression"
    [attachment] = message.attachments
    assert attachment["color"] == "#ECB22E"
    text = json.dumps(attachment, ensure_ascii=False)
    assert "*vs last good run* `penguins-good-1`" in text
    assert "accuracy 0.97 → 0.85 ▼ -0.12 (-12.4%)" in text
    assert "accuracy 0.85 is under the minimum 0.9" in text
    kept = json.loads(runtime.store.read("history/penguins/penguins-worse-1.json") or b"")
    assert kept["status"] == "succeeded_with_regression"
    assert kept["baseline_run_id"] == "penguins-good-1"


def test_bot_mode_a_regressions_thread_reply_is_broadcast_and_the_card_moves_on_to_it(
    settings: Settings, slack: FakeSlack
) -> None:
    runtime = start(settings, bot_channel(slack), slack_channel="#ml-training")
    run_stages(runtime, "penguins-good-2")
    run_stages(runtime, "penguins-worse-2", accuracy=0.5)
    parent, *replies = slack.channel_messages("#ml-training")[4:]
    assert parent.blocks[0]["text"]["text"] == ":warning: penguins: succeeded with regression"
    assert replies[-1].broadcast and replies[-1].thread_ts == parent.ts
    assert ":warning: *penguins*" in replies[-1].blocks[0]["text"]["text"]
    kept = json.loads(runtime.store.read("notifications/penguins-worse-2/message.json") or b"")
    assert kept["status"] == "succeeded_with_regression"


def test_bot_mode_failure_only_policy_posts_one_full_message_on_failure(
    settings: Settings, slack: FakeSlack
) -> None:
    runtime = start(settings, bot_channel(slack), slack_channel="#ml-training", on_success="never")
    run_stages(runtime, "penguins-ok-1")
    assert slack.calls() == []  # a success under `never`: silence
    run_stages(runtime, "penguins-bad-1", outcome="failed")
    [message] = slack.channel_messages("#ml-training")
    assert message.thread_ts is None
    assert message.blocks[0]["text"]["text"] == ":x: penguins: failed"
    facts = json.dumps(message.blocks[1])
    assert "344 rows" in facts and "manual by alice" in facts


def test_a_redelivered_event_does_not_post_twice(settings: Settings, slack: FakeSlack) -> None:
    runtime = start(settings, bot_channel(slack), slack_channel="#ml-training")
    events = run_stages(runtime, "penguins-dup-1")
    before = len(slack.calls())
    for event in events:  # every event delivered again
        runtime.ports.publish(event)
    runtime.bus.run_until_idle()
    assert len(slack.calls()) == before


# --- webhooks: one message per status change ------------------------------------------------


def test_webhook_mode_posts_one_message_per_status_change(
    settings: Settings, slack: FakeSlack
) -> None:
    runtime = start(settings, webhook_channel(slack))
    run_stages(runtime, "penguins-wh-1")
    posts = [c.body for c in slack.delivered("webhook")]
    assert [p["text"].split(" · ")[1] for p in posts] == [
        "trigger.accepted",
        "snapshot.completed",
        "pipeline.submitted",
        "pipeline.succeeded",
    ]
    assert "attachments" not in posts[0]  # progress: one line
    assert posts[-1]["blocks"][0]["text"]["text"] == ":white_check_mark: penguins: succeeded"
    assert posts[-1]["attachments"][0]["color"] == "#2EB67D"
    assert all(p["unfurl_links"] is False for p in posts)


def test_on_recovery_posts_the_first_success_after_a_failure_only(
    settings: Settings, slack: FakeSlack
) -> None:
    runtime = start(settings, webhook_channel(slack), on_success="on_recovery")
    run_stages(runtime, "penguins-r-1")  # previous unknown: quiet
    run_stages(runtime, "penguins-r-2", outcome="failed")  # failures always
    run_stages(runtime, "penguins-r-3")  # recovery: posted
    run_stages(runtime, "penguins-r-4")  # still fine: quiet
    texts = [c.body["text"].split(" · ") for c in slack.delivered("webhook")]
    assert [(t[1], t[2].split()[1]) for t in texts] == [
        ("pipeline.failed", "penguins-r-2"),
        ("pipeline.succeeded", "penguins-r-3"),
    ]


def test_a_named_webhook_routes_the_pipeline_and_unknown_names_are_not_silently_dropped(
    settings: Settings, slack: FakeSlack
) -> None:
    default, team = slack.add_webhook("default"), slack.add_webhook("team")
    chat = SlackWebhookChat({None: default, "team": team}, FAST)
    runtime = start(settings, chat, slack_webhook="team")
    runtime.ports.publish(failed_event("penguins-t-1"))
    runtime.bus.run_until_idle()
    [call] = slack.delivered()
    assert call.path in team

    runtime = start(settings, chat, slack_webhook="nope")
    runtime.ports.publish(failed_event("penguins-t-2"))
    stats = runtime.bus.run_until_idle()
    assert stats.dead_lettered == 1  # refused -> retried -> dead-lettered ...
    kept = json.loads(
        runtime.store.read("notifications/undelivered/penguins-t-2/pipeline.failed.json") or b""
    )
    assert "no webhook nope is configured" in kept["reason"]  # ... kept with its message
    notice = slack.delivered()[-1].body["text"]  # ... and announced on the default webhook
    assert "could not be delivered" in notice and "pipeline.failed" in notice


# --- pace, 429, 500, dead letters ------------------------------------------------------------


def test_a_burst_of_50_events_is_delivered_once_each_and_never_faster_than_the_pace(
    settings: Settings, slack: FakeSlack
) -> None:
    runtime = start(settings, webhook_channel(slack))
    events = [failed_event(f"penguins-burst-{i:02d}") for i in range(50)]
    for event in events + events[:10]:  # 10 of them delivered twice
        runtime.ports.publish(event)
    stats = runtime.bus.run_until_idle()
    assert stats.dead_lettered == 0
    posts = slack.delivered("webhook")
    runs = sorted(p.body["text"].split(" · ")[2].split()[1] for p in posts)
    assert runs == sorted(e.run_id for e in events)  # all 50, none twice
    # the next send leaves `min_interval` after the previous one was answered, so Slack's own
    # arrival times are that far apart whatever the latency (measured here, at the fake)
    assert min(gaps(posts)) >= FAST.min_interval


def test_the_pace_holds_across_threads_of_one_process(slack: FakeSlack) -> None:
    chat = webhook_channel(slack)
    senders = [
        threading.Thread(
            target=lambda n=n: chat.send(ChatMessage(f"message {n}"), route=None), daemon=True
        )
        for n in range(12)
    ]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join(timeout=30)
    posts = slack.delivered("webhook")
    assert len(posts) == 12
    assert min(gaps(posts)) >= FAST.min_interval


def test_retry_after_is_honoured_and_holds_back_the_channel(slack: FakeSlack) -> None:
    slack.add_channel("#ml-training")
    chat = bot_channel(slack)
    slack.queue(429, {"ok": False, "error": "ratelimited"}, retry_after=1)
    began = time.monotonic()
    chat.send(ChatMessage("after a 429"), route="#ml-training")
    limited, delivered = slack.calls()
    assert limited.status == 429 and delivered.ok
    assert delivered.at - limited.at >= 1.0  # exactly as long as Slack asked (no less)
    assert time.monotonic() - began < 1.9  # and not the extra second of jitter slack_sdk adds


def test_a_429_storm_ends_delivered(settings: Settings, slack: FakeSlack) -> None:
    runtime = start(settings, webhook_channel(slack))
    slack.queue(429, "rate_limited", retry_after=0, times=6)  # longer than one attempt's retries
    runtime.ports.publish(failed_event("penguins-storm-1"))
    stats = runtime.bus.run_until_idle()
    assert stats.failed_deliveries == 1 and stats.dead_lettered == 0  # Pub/Sub retried once
    assert [c.status for c in slack.calls()] == [429] * 6 + [200]
    assert runtime.store.list("notifications/undelivered/") == []  # forgotten once delivered


def test_a_500_outage_ends_dead_lettered_and_announced_when_slack_is_back(
    settings: Settings, slack: FakeSlack
) -> None:
    runtime = start(settings, bot_channel(slack), slack_channel="#ml-training")
    attempts = settings.max_delivery_attempts * (1 + FAST.server_error_retries)
    slack.queue(500, {"ok": False, "error": "internal_error"}, times=attempts)
    runtime.ports.publish(failed_event("penguins-outage-1"))
    stats = runtime.bus.run_until_idle()
    assert stats.dead_lettered == 1
    assert [c.status for c in slack.calls()][:attempts] == [500] * attempts
    lost = runtime.store.list("deadletters/mlrelay-notifier/")
    assert len(lost) == 1  # the event itself is kept by the bus
    kept = json.loads(
        runtime.store.read("notifications/undelivered/penguins-outage-1/pipeline.failed.json")
        or b""
    )
    assert kept["message"]["blocks"][0]["text"]["text"] == ":x: penguins: failed"
    assert "500 internal_error" in kept["reason"]
    [notice] = slack.channel_messages("#ml-training")  # Slack is back for the dead letter
    assert notice.blocks[0]["text"]["text"] == ":rotating_light: penguins: message dead-lettered"
    assert "could not be delivered after 3 attempts" in json.dumps(notice.attachments)


def test_an_outage_that_outlasts_the_dead_letter_too_is_still_kept(
    settings: Settings, slack: FakeSlack
) -> None:
    runtime = start(settings, webhook_channel(slack))
    slack.queue(503, "down", times=1000)
    runtime.ports.publish(failed_event("penguins-outage-2"))
    stats = runtime.bus.run_until_idle()
    assert stats.dead_lettered == 2  # the notification, then the dead-letter notice
    assert len(runtime.store.list("deadletters/mlrelay-notifier/")) == 1
    assert len(runtime.store.list("deadletters/mlrelay-dead-letters/")) == 1
    assert (
        runtime.store.read("notifications/undelivered/penguins-outage-2/pipeline.failed.json")
        is not None
    )


def test_blocks_slack_refuses_are_sent_again_as_plain_text(
    settings: Settings, slack: FakeSlack
) -> None:
    runtime = start(settings, bot_channel(slack), slack_channel="#ml-training")
    slack.queue(200, {"ok": False, "error": "invalid_blocks"})
    runtime.ports.publish(failed_event("penguins-ib-1"))
    runtime.bus.run_until_idle()
    refused, accepted = slack.calls()
    assert "blocks" in refused.body and "blocks" not in accepted.body
    assert accepted.ok and accepted.body["text"].startswith(":x: penguins · pipeline.failed")


# --- secrets ----------------------------------------------------------------------------------


def test_the_webhook_url_and_token_never_reach_logs_or_errors(
    settings: Settings,
    slack: FakeSlack,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    url = slack.add_webhook("default")
    secret_part = url.rsplit("/", 1)[1]
    chat = SlackWebhookChat({None: url}, FAST)
    slack.queue(500, f"boom {url}", times=10)  # even a server that echoes the URL back
    with pytest.raises(ChatUnavailable) as raised:
        chat.send(ChatMessage("hello"), route=None)
    assert secret_part not in str(raised.value)
    slack.canned.clear()
    bot = bot_channel(slack)
    slack.queue(200, {"ok": False, "error": "invalid_auth"})
    runtime = start(settings, bot, slack_channel="#ml-training")
    runtime.ports.publish(failed_event("penguins-secret-1"))
    runtime.bus.run_until_idle()
    logged = caplog.text + capsys.readouterr().err
    assert "Going to retry" in logged or "retry handler" in logged  # slack_sdk did log retries
    assert secret_part not in logged
    assert slack.token not in logged
    stored = "".join(
        (runtime.store.read(key) or b"").decode() for key in runtime.store.list("notifications/")
    )
    assert slack.token not in stored and secret_part not in stored
