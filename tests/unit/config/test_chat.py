"""The chat section: Slack's token, webhooks, channel and pace from the environment, secrets
that never print."""

from __future__ import annotations

from mlrelay.config.settings import Secret, Settings


def test_chat_settings_come_from_the_environment_and_never_print() -> None:
    settings = Settings.from_env(
        {
            "SLACK_BOT_TOKEN": "bot-123-secret",
            "SLACK_WEBHOOK_URL_TEAM": "https://hooks.slack.com/services/T/B/secretteam",
            "MLRELAY_SLACK_CHANNEL": "#mlops",
            "MLRELAY_SLACK_MIN_INTERVAL": "1.5",
        }
    )
    assert settings.chat.bot_token.value == "bot-123-secret"
    assert settings.chat.webhooks["team"].value.endswith("secretteam")
    assert settings.chat.min_interval_seconds == 1.5
    shown = repr(settings)
    assert "bot-123-secret" not in shown and "secretteam" not in shown


def test_the_slack_webhook_never_prints() -> None:
    settings = Settings.from_env({"SLACK_WEBHOOK_URL": "https://example.invalid/T000/B000/XXXX"})
    assert settings.chat.webhook_url.value.endswith("XXXX")
    assert "XXXX" not in repr(settings) and "XXXX" not in str(settings.chat.webhook_url)
    assert repr(Secret("")) == "Secret(unset)"
