"""What a signed Slack request asks for: a button click (`block_actions`, its JSON in the form
field `payload`), a `/mlrelay` slash command (form fields), or Slack's SSL check.

A button of a run card says what it does in its `action_id` (`mlrelay_retry`, `mlrelay_rerun`,
`mlrelay_cancel`, `mlrelay_approve`, `mlrelay_reject`, `mlrelay_backfill`, `mlrelay_promote`,
`mlrelay_rollback`) and the run in its `value` (the run id; for Backfill, the run id the missed
slot's tick would have made; for Promote / Roll back, the run whose model is the canary).
Anything else signed by Slack but not understood is a `BadSlackRequest` naming the field.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import parse_qs

from mlrelay.contracts import COMMAND_ACTIONS, CommandAction
from mlrelay.errors import PermanentError

ACTION_PREFIX = "mlrelay_"
USER_ID = re.compile(r"^[UW][A-Z0-9]{2,30}$")
RUN_ID = re.compile(r"^[a-z][a-z0-9-]{2,127}$")
MAX_RESPONSE_URL = 500


class BadSlackRequest(PermanentError):
    """Signed by Slack, but not a request this door understands."""


@dataclass(frozen=True)
class ButtonClick:
    user_id: str
    action: CommandAction
    run_id: str
    response_url: str | None


@dataclass(frozen=True)
class OtherClick:
    """A block action that is not one of mlrelay's buttons (a link button, a menu): ignored."""

    user_id: str


@dataclass(frozen=True)
class SlashCommand:
    user_id: str
    command: str
    text: str
    response_url: str | None


@dataclass(frozen=True)
class SslCheck:
    """Slack checking the slash command's URL: answered 200, nothing else."""


SlackRequest = ButtonClick | OtherClick | SlashCommand | SslCheck


def parse_slack_request(body: bytes) -> SlackRequest:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadSlackRequest("body", "is not UTF-8 form data") from None
    form = {k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()}
    if form.get("ssl_check") == "1":
        return SslCheck()
    if "payload" in form:
        return _parse_payload(form["payload"])
    if "command" in form:
        return SlashCommand(
            user_id=_user_id(form.get("user_id"), "user_id"),
            command=form["command"][:40],
            text=form.get("text", "")[:500],
            response_url=_response_url(form.get("response_url")),
        )
    raise BadSlackRequest("body", "has neither `payload` nor `command`", "send a Slack request")


def _parse_payload(raw: str) -> SlackRequest:
    try:
        payload = json.loads(raw)
    except (json.JSONDecodeError, RecursionError):
        raise BadSlackRequest("payload", "is not JSON") from None
    if not isinstance(payload, dict):
        raise BadSlackRequest("payload", "is not a JSON object")
    if payload.get("type") != "block_actions":
        raise BadSlackRequest("payload.type", f"{str(payload.get('type'))[:40]!r} is not handled")
    user = payload.get("user")
    user_id = _user_id(user.get("id") if isinstance(user, dict) else None, "payload.user.id")
    actions = payload.get("actions")
    if not isinstance(actions, list) or not actions or not isinstance(actions[0], dict):
        raise BadSlackRequest("payload.actions", "is not a list of actions")
    first = cast(dict[str, Any], actions[0])
    action_id = first.get("action_id")
    if not isinstance(action_id, str) or not action_id.startswith(ACTION_PREFIX):
        return OtherClick(user_id)
    action = action_id.removeprefix(ACTION_PREFIX)
    if action not in COMMAND_ACTIONS:
        raise BadSlackRequest("payload.actions.0.action_id", f"{action_id[:40]!r} is unknown")
    run_id = first.get("value")
    if not isinstance(run_id, str) or not RUN_ID.match(run_id):
        raise BadSlackRequest("payload.actions.0.value", "is not a run id")
    return ButtonClick(
        user_id=user_id,
        action=cast(CommandAction, action),
        run_id=run_id,
        response_url=_response_url(payload.get("response_url")),
    )


def _user_id(value: object, field: str) -> str:
    if not isinstance(value, str) or not USER_ID.match(value):
        raise BadSlackRequest(field, "is not a Slack user id")
    return value


def _response_url(value: object) -> str | None:
    if not isinstance(value, str) or not value or len(value) > MAX_RESPONSE_URL:
        return None
    return value
