"""Settings read from the environment: the reliability knobs, bad values named with a fix, and
each function reading only its own section."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mlrelay.config.settings import Settings
from mlrelay.config.snapshot import SnapshotSettings
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


def test_the_http_timeout_is_read_from_the_environment_and_checked() -> None:
    assert Settings.from_env({}).http_timeout_seconds == 30.0
    assert Settings.from_env({"MLRELAY_HTTP_TIMEOUT_SECONDS": "2.5"}).http_timeout_seconds == 2.5
    for wrong in ("0", "-1", "soon", "inf", "nan"):
        with pytest.raises(ConfigurationError) as caught:
            Settings.from_env({"MLRELAY_HTTP_TIMEOUT_SECONDS": wrong})
        assert caught.value.field == "MLRELAY_HTTP_TIMEOUT_SECONDS"


def test_a_function_reads_only_its_own_section() -> None:
    env = {"MLRELAY_SNAPSHOT_MODE": "bogus", "MLRELAY_SLACK_MIN_INTERVAL": "soon"}
    settings = Settings.from_env(env)  # the trigger and the deployer start fine
    assert settings.deployer.vertex_endpoint == ""
    with pytest.raises(ConfigurationError) as snapshot:
        _ = settings.snapshot  # the snapshotter refuses, naming the variable and the fix
    assert snapshot.value.field == "MLRELAY_SNAPSHOT_MODE"
    assert snapshot.value.fix == "use export or stream"
    with pytest.raises(ConfigurationError) as chat:
        _ = settings.chat
    assert chat.value.field == "MLRELAY_SLACK_MIN_INTERVAL" and "e.g." in chat.value.fix


def test_a_section_is_read_once_and_a_given_section_wins() -> None:
    settings = Settings.from_env({"MLRELAY_SNAPSHOT_COMPRESSION": "SNAPPY"})
    assert settings.snapshot is settings.snapshot
    assert settings.snapshot.compression == "snappy"
    given = SnapshotSettings(mode="stream")
    assert Settings(sections=(given,)).snapshot is given


def test_secrets_stay_out_of_the_settings_repr() -> None:
    settings = Settings.from_env({"SLACK_BOT_TOKEN": "bot-secret-value"})
    assert settings.chat.bot_token.value == "bot-secret-value"
    assert "bot-secret-value" not in repr(settings) + repr(settings.chat)


def test_only_mlrelays_own_variables_are_kept_for_the_sections() -> None:
    settings = Settings.from_env(
        {"PATH": "/bin", "OTHER_TOKEN": "not-ours", "SLACK_WEBHOOK_URL_TEAM": "https://x.invalid/"}
    )
    assert set(settings.env) == {"SLACK_WEBHOOK_URL_TEAM"}
    assert set(settings.chat.webhooks) == {"team"}
