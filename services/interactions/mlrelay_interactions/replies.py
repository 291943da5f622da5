"""What the person who clicked or typed reads: ephemeral messages (only they see them).

A slash command's answer is the HTTP response itself; a button's answer goes to the request's
`response_url` too (Slack ignores a block action's response body). The response URL is posted
to only when it is Slack's (`MLRELAY_SLACK_RESPONSE_URL_PREFIX`) and is never logged."""

from __future__ import annotations

from typing import Any

import structlog

from mlrelay.config.interactions import InteractionSettings

log = structlog.get_logger()

USAGE = (
    "Usage: `/mlrelay status PIPELINE` · `/mlrelay runs PIPELINE` · `/mlrelay retry RUN_ID` · "
    "`/mlrelay promote RUN_ID` · `/mlrelay rollback RUN_ID`"
)


def ephemeral(text: str) -> dict[str, Any]:
    return {"response_type": "ephemeral", "replace_original": False, "text": text}


def post_to_response_url(
    settings: InteractionSettings, response_url: str | None, reply: dict[str, Any]
) -> None:
    """Best effort within Slack's 3 s: a failure is logged (without the URL), not raised."""
    if not response_url or not response_url.startswith(settings.response_url_prefix):
        if response_url:
            log.warning("response_url_not_slack", outcome="not posted")
        return
    from slack_sdk.webhook import WebhookClient

    client = WebhookClient(response_url, timeout=int(max(1, settings.slack_timeout_seconds)))
    try:
        answer = client.send_dict(reply)
    except OSError as exc:
        log.warning("response_url_post_failed", error=type(exc).__name__)
        return
    if answer.status_code != 200:
        log.warning("response_url_post_refused", status=answer.status_code)
