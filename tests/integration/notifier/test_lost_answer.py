"""A Slack answer lost after Slack posted the message (bot mode): the real slack_sdk WebClient
against the loopback Slack behind a FaultProxy that LOSEs answers. The post is tagged with
message metadata and looked up by it (`conversations.history` / `.replies`) instead of being
posted again; one message per run and per thread reply, and the notifier keeps the found `ts`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from structlog.testing import capture_logs

from mlrelay.config.settings import Settings
from mlrelay.errors import TransientError
from mlrelay_notifier.chat import ChatRetries, Posted
from mlrelay_notifier.render import ChatMessage
from mlrelay_notifier.slack_clients import POST_TAG, SlackBotChat, SlackWebhookChat
from mlrelay_tools.local.runtime import LocalRuntime
from tests.fakes.fault_proxy import DROP, HANG, LOSE, FaultProxy
from tests.fakes.slack import FakeSlack
from tests.helpers import make_runtime
from tests.integration.notifier.notifier_kit import FAST, registry_with, run_stages


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    fake = FakeSlack().start()
    fake.add_channel("#ml-training")
    fake.add_channel("#mlops")
    yield fake
    fake.stop()


@pytest.fixture
def proxy(slack: FakeSlack) -> Iterator[FaultProxy]:
    started = FaultProxy(slack.base.removeprefix("http://")).start()
    yield started
    started.stop()


def start(settings: Settings, chat: object) -> LocalRuntime:
    registry = registry_with(slack_channel="#ml-training")
    return make_runtime(settings, chat, registry=registry)  # type: ignore[arg-type]


def bot_via(proxy: FaultProxy, slack: FakeSlack) -> SlackBotChat:
    return SlackBotChat(
        slack.token, default_channel="#mlops", api_url=proxy.url + "/api/", retries=FAST
    )


class FreshChannelEachSend:
    """A new SlackBotChat for every send: each delivery on another Cloud Function instance
    (nothing remembered in memory between them)."""

    name = "slack-bot"
    threads = True

    def __init__(self, proxy: FaultProxy, slack: FakeSlack) -> None:
        self.proxy, self.slack = proxy, slack

    def send(self, message: ChatMessage, **kwargs: Any) -> Posted:
        return bot_via(self.proxy, self.slack).send(message, **kwargs)

    def update(self, message: ChatMessage, *, channel: str, ts: str) -> None:
        bot_via(self.proxy, self.slack).update(message, channel=channel, ts=ts)


def test_a_post_whose_answer_was_lost_is_looked_up_by_its_metadata_not_posted_again(
    slack: FakeSlack, proxy: FaultProxy
) -> None:
    channel = bot_via(proxy, slack)
    proxy.fail_next(LOSE, path="/api/chat.postMessage")
    posted = channel.send(ChatMessage("run r-1 accepted", []), route="#ml-training", key="r-1/m")
    [message] = slack.channel_messages("#ml-training")
    assert proxy.requests[str(LOSE)] == 1 and len(slack.calls("chat.postMessage")) == 1
    assert posted == Posted(slack.channel_ids["#ml-training"], message.ts)
    assert message.metadata == {"event_type": POST_TAG, "event_payload": {"key": "r-1/m"}}
    [history] = slack.calls("conversations.history")
    assert history.body["channel"] == posted.channel  # the id, found by conversations.list
    assert history.body["include_all_metadata"] in ("1", "true") and "oldest" in history.body


def test_a_thread_reply_whose_answer_was_lost_is_looked_up_in_the_thread(
    slack: FakeSlack, proxy: FaultProxy
) -> None:
    channel = bot_via(proxy, slack)
    parent = channel.send(ChatMessage("run r-2", []), route="#ml-training", key="r-2/m")
    proxy.fail_next(LOSE, path="/api/chat.postMessage")
    reply = channel.send(
        ChatMessage("r-2 snapshot ready", []),
        route=parent.channel,
        thread_ts=parent.ts,
        key="r-2/snapshot.completed",
    )
    messages = slack.channel_messages("#ml-training")
    assert [m.thread_ts for m in messages] == [None, parent.ts]
    assert reply.ts == messages[1].ts and len(slack.calls("conversations.replies")) == 1
    assert not slack.calls("conversations.list")  # the channel id was known


def test_a_post_is_looked_up_first_when_an_earlier_delivery_got_no_answer(
    slack: FakeSlack, proxy: FaultProxy
) -> None:
    bot_via(proxy, slack).send(ChatMessage("run r-3", []), route="#ml-training", key="r-3/m")
    again = bot_via(proxy, slack).send(
        ChatMessage("run r-3", []), route="#ml-training", key="r-3/m", look_first=True
    )
    [message] = slack.channel_messages("#ml-training")
    assert again.ts == message.ts and len(slack.calls("chat.postMessage")) == 1


def test_a_lost_answer_on_the_runs_first_post_keeps_one_message_updated_in_place(
    settings: Settings, slack: FakeSlack, proxy: FaultProxy
) -> None:
    runtime = start(settings, bot_via(proxy, slack))
    proxy.fail_next(LOSE, path="/api/chat.postMessage")  # the run's message
    proxy.fail_next(LOSE, path="/api/chat.postMessage")  # the first thread reply
    run_stages(runtime, "penguins-lost-1")
    [parent, *replies] = slack.channel_messages("#ml-training")
    assert proxy.requests[str(LOSE)] == 2
    assert parent.thread_ts is None and parent.updates == 3  # chat.update edited the found one
    assert [r.thread_ts for r in replies] == [parent.ts] * 3
    kept = json.loads(runtime.store.read("notifications/penguins-lost-1/message.json") or b"")
    assert kept["ts"] == parent.ts and kept["status"] == "succeeded"
    assert parent.metadata == {
        "event_type": POST_TAG,
        "event_payload": {"key": "penguins-lost-1/run-message"},
    }


def test_a_redelivery_after_a_lost_answer_and_a_failed_lookup_finds_the_message(
    settings: Settings, slack: FakeSlack, proxy: FaultProxy
) -> None:
    """The answer is lost and the lookup fails too (connection dropped on every try): the
    delivery fails; its redelivery, on a fresh instance, looks first (the failed attempt was
    kept in the bucket) and adopts the message instead of posting it again."""
    chat = FreshChannelEachSend(proxy, slack)
    runtime = start(settings, chat)
    proxy.fail_next(LOSE, path="/api/chat.postMessage")
    proxy.fail_next(DROP, times=1 + FAST.connection_retries, path="/conversations.history")
    run_stages(runtime, "penguins-lost-2", until="trigger.accepted")
    [message] = slack.channel_messages("#ml-training")
    assert proxy.pending_faults() == 0 and len(slack.calls("chat.postMessage")) == 1
    assert len(slack.calls("conversations.history")) == 1  # the redelivery's lookup
    kept = json.loads(runtime.store.read("notifications/penguins-lost-2/message.json") or b"")
    assert kept["ts"] == message.ts
    assert not runtime.store.list("notifications/undelivered/")


def test_a_refused_lookup_is_warned_about_once_and_the_message_posted_again(
    slack: FakeSlack, proxy: FaultProxy
) -> None:
    """Without channels:history the bot cannot look: it posts again (the duplicate the README
    warns about) and says once what scope is missing."""
    slack.missing_scopes["conversations.history"] = "channels:history"
    channel = bot_via(proxy, slack)
    with capture_logs() as logs:
        for run in ("r-4", "r-5"):
            proxy.fail_next(LOSE, path="/api/chat.postMessage")
            channel.send(ChatMessage(f"run {run}", []), route="#ml-training", key=f"{run}/m")
    assert len(slack.channel_messages("#ml-training")) == 4
    refused = [e for e in logs if e["event"] == "slack_lookup_refused"]
    assert len(refused) == 1 and refused[0]["error"] == "missing_scope"


def test_a_post_that_timed_out_is_not_posted_again_at_once(
    slack: FakeSlack, proxy: FaultProxy
) -> None:
    """A timed-out post may still land: the delivery fails (redelivered later, looked up)."""
    channel = SlackBotChat(
        slack.token,
        api_url=proxy.url + "/api/",
        retries=ChatRetries(min_interval=0, timeout=1),
    )
    proxy.hang_seconds = 3
    proxy.fail_next(HANG, path="/api/chat.postMessage")
    with pytest.raises(TransientError):
        channel.send(ChatMessage("run r-6", []), route="#ml-training", key="r-6/m")
    assert not slack.calls("conversations.history")
    channel.send(ChatMessage("run r-6", []), route="#ml-training", key="r-6/m")
    assert len(slack.calls("conversations.history")) == 1  # looked first, found none, posted
    assert len(slack.channel_messages("#ml-training")) == 1


def test_a_webhook_post_whose_answer_was_lost_is_posted_once_more(
    slack: FakeSlack, proxy: FaultProxy
) -> None:
    """Webhooks cannot look anything up: the dropped connection is retried, one duplicate (as
    the README says)."""
    url = slack.add_webhook("team").replace(slack.base, proxy.url)
    channel = SlackWebhookChat({None: url}, FAST)
    proxy.fail_next(LOSE, path="/services/")
    channel.send(ChatMessage("run r-7 succeeded", []), route=None, key="r-7/m")
    assert len(slack.channel_messages("webhook:" + url.removeprefix(proxy.url))) == 2


def test_a_delivery_that_took_over_a_dead_workers_claim_looks_first(
    settings: Settings, slack: FakeSlack, proxy: FaultProxy
) -> None:
    """The notifier died after Slack posted the run's message but before it recorded it: its
    claims (the event's ledger record, the run message's `posting` claim) are left behind with
    their leases. The redelivery takes them over once they lapse and, since the dead worker may
    have posted, looks the message up and adopts it instead of posting it again."""
    from datetime import timedelta

    from mlrelay.contracts import utc_now
    from mlrelay.stage.ledger import StageRecord
    from mlrelay_notifier.run_message import RunMessage, message_key

    run_id = "penguins-died-1"
    runtime = start(settings, FreshChannelEachSend(proxy, slack))
    bot_via(proxy, slack).send(  # what the dead worker got out before it died
        ChatMessage(f"run {run_id} accepted", []), route="#ml-training", key=f"{run_id}/run-message"
    )
    lapsed = utc_now() - timedelta(minutes=10)
    dead_claim = StageRecord(
        "notify", "running", lapsed.isoformat(), lapsed.isoformat(), claim_id="dead-worker"
    )
    runtime.store.create(f"notifications/{run_id}/trigger.accepted.json", dead_claim.to_json())
    posting = RunMessage("posting", until=lapsed.isoformat())
    runtime.store.create(message_key(run_id), posting.to_json())
    run_stages(runtime, run_id, until="trigger.accepted")
    [message] = slack.channel_messages("#ml-training")
    assert len(slack.calls("chat.postMessage")) == 1  # only the dead worker's
    assert len(slack.calls("conversations.history")) == 1  # the redelivery looked
    kept = json.loads(runtime.store.read(message_key(run_id)) or b"")
    assert kept["state"] == "posted" and kept["ts"] == message.ts
    record = json.loads(runtime.store.read(f"notifications/{run_id}/trigger.accepted.json") or b"")
    assert record["state"] == "done" and record["attempts"] == 2
