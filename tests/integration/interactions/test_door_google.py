"""The interactions function in google mode: the real functions-framework app, claims in the GCS
emulator (create-only for real), commands published with the real Pub/Sub client to Google's
emulator, and user groups asked of the loopback Slack with the real slack_sdk client."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from mlrelay.adapters.pubsub_publisher import PubSubPublisher
from mlrelay.config.chat import ChatSettings
from mlrelay.config.env import Secret
from mlrelay.config.interactions import InteractionSettings
from mlrelay.config.settings import Settings
from mlrelay.contracts import RunCommand
from mlrelay.ports.container import Ports, use_ports
from mlrelay.registry import load_registry
from tests.fakes.slack import FakeSlack
from tests.helpers import (
    REGISTRY,
    SLACK_USER,
    button_body,
    http_function_client,
    seed_run,
    signed_headers,
    slash_body,
)
from tests.integration.google_backend import PROJECT, new_bucket
from tests.unit.interactions.door_kit import allowing, signing_secret

# the emulator still honours return_immediately, which lets a test read "nothing was published"
pytestmark = pytest.mark.filterwarnings("ignore:The return_immediately flag:DeprecationWarning")

RUN = "penguins-sched-20261130t0500z-1a2b3c4d"
GROUP = "S0ONCALL"
MEMBER = "U777MEMBER"


@pytest.fixture(scope="module")
def commands_subscription(pubsub: str) -> str:
    from google.cloud import pubsub_v1

    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    topic = publisher.topic_path(PROJECT, "mlrelay-commands")
    publisher.create_topic(name=topic)
    subscription = subscriber.subscription_path(PROJECT, "mlrelay-commands-test")
    subscriber.create_subscription(name=subscription, topic=topic)
    return subscription


def pull_all(subscription: str) -> list[Any]:
    """Everything on the subscription now (pulled until an empty answer, then acknowledged)."""
    from google.cloud import pubsub_v1

    subscriber = pubsub_v1.SubscriberClient()
    received: list[Any] = []
    while True:
        response = subscriber.pull(
            subscription=subscription, max_messages=50, timeout=10, return_immediately=True
        )
        if not response.received_messages:
            return received
        received += response.received_messages
        subscriber.acknowledge(
            subscription=subscription, ack_ids=[m.ack_id for m in response.received_messages]
        )


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    fake = FakeSlack().start()
    fake.user_groups[GROUP] = [MEMBER]
    yield fake
    fake.stop()


@pytest.fixture
def door(tmp_path: Path, gcs: str, commands_subscription: str, slack: FakeSlack) -> Iterator[Any]:
    pull_all(commands_subscription)  # start empty
    store = new_bucket()
    seed_run(store, RUN)
    settings = Settings(
        mode="google",
        project=PROJECT,
        bucket="unused",
        home=tmp_path,
        registry_path=REGISTRY,
        sections=(
            InteractionSettings(
                signing_secret=Secret(signing_secret()),
                response_url_prefix=slack.base + "/actions/",
            ),
            ChatSettings(bot_token=Secret(slack.token), api_url=slack.api_url),
        ),
    )
    registry = allowing(load_registry(REGISTRY), [SLACK_USER], [GROUP])
    ports = Ports(settings, publisher=PubSubPublisher(PROJECT), store=store, registry=registry)
    use_ports(ports)
    yield http_function_client("interactions", "on_slack_request")
    use_ports(None)


def post(client: Any, body: bytes, **extra: str) -> Any:
    return client.post("/", data=body, headers={**signed_headers(signing_secret(), body), **extra})


def test_concurrent_clicks_and_retries_publish_one_command_to_pubsub(
    door: Any, commands_subscription: str, slack: FakeSlack
) -> None:
    body = button_body(RUN, "retry", response_url=slack.response_url())

    def click(i: int) -> int:
        retry = {"X-Slack-Retry-Num": str(i - 9)} if i >= 10 else {}
        return int(post(door, body, **retry).status_code)

    with ThreadPoolExecutor(max_workers=10) as pool:
        assert list(pool.map(click, range(13))) == [200] * 13
    (message,) = pull_all(commands_subscription)
    command = RunCommand.model_validate(json.loads(message.message.data))
    assert (command.action, command.run_id, command.requested_by) == (
        "retry",
        RUN,
        f"slack:{SLACK_USER}",
    )
    assert message.message.attributes["action"] == "retry"
    # every clicker was answered at the response URL: one "requested", the rest "already"
    texts = [r["text"] for r in slack.responses]
    assert len(texts) == 13
    assert sum("requested by" in t and "already" not in t for t in texts) == 1
    assert all(r["response_type"] == "ephemeral" for r in slack.responses)


def test_a_member_of_an_allowed_user_group_may_act_and_groups_are_cached(
    door: Any, commands_subscription: str, slack: FakeSlack
) -> None:
    for action in ("retry", "cancel"):
        body = button_body(RUN, action, user=MEMBER)
        assert "requested by" in post(door, body).get_json()["text"]
    assert len(pull_all(commands_subscription)) == 2
    asked = slack.calls("usergroups.users.list")
    assert len(asked) == 1  # the second click used the cached members
    assert asked[0].body["usergroup"] == GROUP
    assert asked[0].headers["authorization"] == f"Bearer {slack.token}"


def test_a_user_outside_the_groups_is_denied(
    door: Any, commands_subscription: str, slack: FakeSlack
) -> None:
    body = button_body(RUN, "retry", user="U555OTHER")
    answer = post(door, body).get_json()
    assert answer["response_type"] == "ephemeral" and "may not act" in answer["text"]
    assert pull_all(commands_subscription) == []


def test_when_slack_cannot_say_who_is_in_a_group_the_click_is_denied(
    door: Any, commands_subscription: str, slack: FakeSlack
) -> None:
    slack.missing_scopes["usergroups.users.list"] = "usergroups:read"
    body = button_body(RUN, "retry", user=MEMBER)
    response = post(door, body)
    assert response.status_code == 200
    assert "may not act" in response.get_json()["text"]
    assert pull_all(commands_subscription) == []


def test_slash_retry_publishes_through_the_same_claim(
    door: Any, commands_subscription: str
) -> None:
    assert "requested by" in post(door, slash_body(f"retry {RUN}")).get_json()["text"]
    assert "already" in post(door, button_body(RUN, "retry")).get_json()["text"]
    assert len(pull_all(commands_subscription)) == 1
