"""The notifier's settings: Slack (read from the environment by the notifier only)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from mlrelay.config.env import Secret, seconds, secret, setting

SLACK_WEBHOOK_PREFIX = "SLACK_WEBHOOK_URL_"


@dataclass(frozen=True)
class ChatSettings:
    """Slack. In the cloud the secrets come from Secret Manager as secret environment variables;
    with none of them set, notifications go to the console."""

    bot_token: Secret = setting(
        "SLACK_BOT_TOKEN",
        "Bot token (`xoxb-...`): one message per run, updated in place, replies in its thread. "
        "Wins over webhooks when both are set.",
        default_factory=Secret,
        parse=secret,
        secret=True,
    )
    webhook_url: Secret = setting(
        "SLACK_WEBHOOK_URL",
        "Default incoming webhook (one message per status change), when no bot token is set.",
        default_factory=Secret,
        parse=secret,
        secret=True,
    )
    webhooks: Mapping[str, Secret] = setting(
        SLACK_WEBHOOK_PREFIX,
        "Named webhooks: `SLACK_WEBHOOK_URL_TEAM` is the registry's `notify.slack_webhook: team`.",
        default_factory=dict,
        parse=secret,
        prefix=True,
        secret=True,
    )
    default_channel: str = setting(
        "MLRELAY_SLACK_CHANNEL",
        "Bot mode: the channel of events whose pipeline names no `notify.slack_channel`.",
        default="",
    )
    api_url: str = setting(
        "MLRELAY_SLACK_API_URL",
        "Slack Web API base URL (tests point it at a loopback server).",
        default="https://slack.com/api/",
    )
    min_interval_seconds: float = setting(
        "MLRELAY_SLACK_MIN_INTERVAL",
        "Seconds between posts to one channel, per process (Slack allows about one per second).",
        default=1.0,
        parse=seconds(1.0, zero=True),
    )
