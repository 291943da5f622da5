"""Settings read from the environment: the reliability knobs, and bad values named with a fix."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mlrelay.config.settings import Settings
from mlrelay.config.topics import Topics
from mlrelay.errors import ConfigurationError
from mlrelay.stage.dead_letters import source_topic


def test_defaults_keep_a_short_renewed_claim_lease_and_googles_vertex_endpoint() -> None:
    settings = Settings.from_env({})
    assert settings.claim_lease == timedelta(seconds=90)
    assert settings.deployer.vertex_endpoint == ""
    assert settings.subscription_topics == {}


def test_the_lease_endpoint_and_subscription_topics_come_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "MLRELAY_CLAIM_LEASE_SECONDS": "12",
            "MLRELAY_VERTEX_ENDPOINT": "europe-west4-aiplatform.googleapis.com",
            "MLRELAY_SUBSCRIPTION_TOPICS": '{"trigger-copy": "mlrelay-runs"}',
        }
    )
    assert settings.claim_lease == timedelta(seconds=12)
    assert settings.deployer.vertex_endpoint == "europe-west4-aiplatform.googleapis.com"
    topics = Topics()
    named = settings.subscription_topics
    assert source_topic("projects/p/subscriptions/trigger-copy", topics, named) == "mlrelay-runs"
    # a deployed function's own subscription is named after it (infra/)
    assert source_topic("projects/p/subscriptions/mlrelay-deployer", topics, named) == (
        topics.deploys
    )
    assert source_topic("projects/p/subscriptions/unknown", topics, named) is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MLRELAY_CLAIM_LEASE_SECONDS", "0"),
        ("MLRELAY_CLAIM_LEASE_SECONDS", "soon"),
        ("MLRELAY_SUBSCRIPTION_TOPICS", "trigger-copy=mlrelay-runs"),
        ("MLRELAY_SUBSCRIPTION_TOPICS", '{"trigger-copy": 3}'),
    ],
)
def test_a_bad_value_names_the_variable_and_the_fix(name: str, value: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env({name: value})
    assert caught.value.field == name
    assert "e.g." in caught.value.fix
