"""The interactions function's settings: Slack's signing secret and the door's limits (read from
the environment by the interactions function only; its bot token is the chat section's)."""

from __future__ import annotations

from dataclasses import dataclass

from mlrelay.config.env import Secret, positive_int, seconds, secret, setting

SIGNING_SECRET_VARIABLE = "SLACK_SIGNING_SECRET"  # noqa: S105 (the variable's name, not a secret)


@dataclass(frozen=True)
class InteractionSettings:
    """The public door for Slack's buttons and the `/mlrelay` slash command (docs/slack-actions.md).
    Without the signing secret every request is refused (503): the door fails closed."""

    signing_secret: Secret = setting(
        SIGNING_SECRET_VARIABLE,
        "The Slack app's signing secret (Basic Information > App Credentials): every request's "
        "`X-Slack-Signature` is checked with it. Unset: every request is answered 503.",
        default_factory=Secret,
        parse=secret,
        secret=True,
    )
    max_body_bytes: int = setting(
        "MLRELAY_INTERACTIONS_MAX_BODY_BYTES",
        "Largest request body the interactions function reads; a larger one is answered 413.",
        default=65536,
        parse=positive_int(65536),
    )
    user_group_cache_seconds: float = setting(
        "MLRELAY_SLACK_USER_GROUP_CACHE_SECONDS",
        "How long the members of a Slack user group (`usergroups.users.list`) are reused before "
        "they are asked again.",
        default=60.0,
        parse=seconds(60.0, zero=True),
    )
    slack_timeout_seconds: float = setting(
        "MLRELAY_SLACK_ACTION_TIMEOUT_SECONDS",
        "One call to Slack while answering a click (user groups, the response URL): Slack wants "
        "the answer within 3 s.",
        default=1.0,
        parse=seconds(1.0),
    )
    response_url_prefix: str = setting(
        "MLRELAY_SLACK_RESPONSE_URL_PREFIX",
        "Only a `response_url` starting with this is ever posted to (tests point it at a "
        "loopback server).",
        default="https://hooks.slack.com/",
    )
