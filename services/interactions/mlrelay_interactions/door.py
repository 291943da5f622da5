"""The door's logic: signed? understood? allowed? then one command, and an answer for the person.

Answers: 401 unsigned (or stale, or tampered), 413 too large, 400 signed but not understood,
503 our own set-up is wrong (the signing secret first of all: the door fails closed) or the bus
did not take the command, and 200 with an ephemeral message for everything a person asked."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from weakref import WeakKeyDictionary

import structlog

from mlrelay.config.interactions import SIGNING_SECRET_VARIABLE
from mlrelay.contracts import CommandAction, utc_now
from mlrelay.errors import ConfigurationError, PermanentError
from mlrelay.logs import bind_run
from mlrelay.ports.container import Ports
from mlrelay.stage.commands import (
    CARRIED_OUT,
    CommandNotPublished,
    find_run,
    find_slot_to_backfill,
    request_command,
)
from mlrelay_interactions.allowlist import UserGroupLookupFailed, UserGroups, is_allowed
from mlrelay_interactions.promotion_checks import PROMOTION_ACTIONS, promotion_refusal
from mlrelay_interactions.replies import USAGE, ephemeral, post_to_response_url
from mlrelay_interactions.signature import signature_problem
from mlrelay_interactions.slack_requests import (
    RUN_ID,
    BadSlackRequest,
    ButtonClick,
    OtherClick,
    SlashCommand,
    SslCheck,
    parse_slack_request,
)
from mlrelay_interactions.slash_answers import runs_text, status_text

log = structlog.get_logger()

# `/mlrelay <verb> RUN_ID`: the same path as the run card's button
SLASH_ACTIONS: dict[str, CommandAction] = {
    "retry": "retry",
    "promote": "promote",
    "rollback": "rollback",
}


@dataclass(frozen=True)
class Reply:
    status: int
    body: dict[str, Any] | str = field(default="")


class SigningSecretMissing(ConfigurationError):
    def __init__(self) -> None:
        super().__init__(
            SIGNING_SECRET_VARIABLE,
            "is not set: every Slack request is refused (the door fails closed)",
            "store the Slack app's signing secret in Secret Manager and give it to the "
            "interactions function as SLACK_SIGNING_SECRET (docs/slack-actions.md)",
        )


_user_groups: WeakKeyDictionary[Ports, UserGroups] = WeakKeyDictionary()


def user_groups(ports: Ports) -> UserGroups:
    """One user-group cache per process's ports."""
    found = _user_groups.get(ports)
    if found is None:
        section = ports.settings.interactions
        found = UserGroups(
            ports.settings.chat,
            ttl_seconds=section.user_group_cache_seconds,
            timeout_seconds=section.slack_timeout_seconds,
        )
        _user_groups[ports] = found
    return found


def answer_slack_request(
    ports: Ports, headers: Mapping[str, str], body: bytes, now: float
) -> Reply:
    """`headers`: lower-case names. Raises ConfigurationError (answered 503 by the entry)."""
    secret = ports.settings.interactions.signing_secret
    if not secret:
        raise SigningSecretMissing()
    problem = signature_problem(secret.value, body, headers, now)
    if problem is not None:
        log.warning("slack_request_refused", reason=problem)
        return Reply(401, "invalid signature")
    try:
        request = parse_slack_request(body)
    except BadSlackRequest as exc:
        log.warning("slack_request_not_understood", field=exc.field, problem=exc.problem)
        return Reply(400, f"not understood: {exc.field}")
    retry = headers.get("x-slack-retry-num")
    if retry:
        log.info("slack_retry", retry_num=retry[:8], reason=headers.get("x-slack-retry-reason"))
    if isinstance(request, SslCheck | OtherClick):
        return Reply(200)
    if isinstance(request, ButtonClick):
        reply = _command(
            ports, request.user_id, request.action, request.run_id, request.response_url
        )
        post_to_response_url(ports.settings.interactions, request.response_url, reply)
        return Reply(200, reply)
    return Reply(200, _slash(ports, request))


def _slash(ports: Ports, request: SlashCommand) -> dict[str, Any]:
    words = request.text.split()
    if len(words) != 2 or words[0] not in ("status", "runs", *SLASH_ACTIONS):
        return ephemeral(USAGE)
    verb, target = words
    if verb in SLASH_ACTIONS:
        if not RUN_ID.match(target):
            return ephemeral(f"`{target[:80]}` is not a run id. {USAGE}")
        return _command(ports, request.user_id, SLASH_ACTIONS[verb], target, request.response_url)
    try:
        spec = ports.registry.pipeline(target)
    except PermanentError:
        known = ", ".join(sorted(ports.registry.pipelines))
        return ephemeral(f"`{target[:80]}` is not a pipeline of the registry (known: {known}).")
    if not _allowed(ports, spec.actions, request.user_id):
        return _denied(request.user_id, target)
    text = status_text(ports.store, target) if verb == "status" else runs_text(ports.store, target)
    return ephemeral(text)


def _command(
    ports: Ports,
    user_id: str,
    action: CommandAction,
    run_id: str,
    response_url: str | None,
) -> dict[str, Any]:
    with bind_run(run_id=run_id, stage="interactions", user=user_id):
        try:
            if action == "backfill":  # a missed slot: no run yet, the registry proves the slot
                run = find_slot_to_backfill(ports, run_id, now=utc_now())
            else:
                run = find_run(ports, run_id)
        except PermanentError as exc:
            if action == "backfill":
                return ephemeral(f"Nothing was backfilled: {exc.problem}.")
            return ephemeral(f"`{run_id}` is not a run mlrelay knows.")
        try:
            spec = ports.registry.pipeline(run.pipeline)
        except PermanentError:
            return ephemeral(f"`{run.pipeline}` is no longer in the registry; nothing was done.")
        if not _allowed(ports, spec.actions, user_id):
            return _denied(user_id, run.pipeline)
        if action in PROMOTION_ACTIONS:  # only while the run's model is a canary
            refused = promotion_refusal(ports.store, run_id, action)
            if refused is not None:
                log.info("slack_promotion_refused", action=action)
                return ephemeral(refused)
        if action not in CARRIED_OUT:
            log.warning("slack_action_not_carried_out", action=action)
            return ephemeral(f"{action} is not carried out by mlrelay yet; nothing was done.")
        outcome = request_command(
            ports,
            run,
            action,
            requested_by=f"slack:{user_id}",
            requested_at=utc_now(),
            response_url=response_url,
        )
        if outcome.first:
            return ephemeral(f"{action} of `{run_id}` requested by <@{user_id}>.")
        first = outcome.requested_by.removeprefix("slack:")
        return ephemeral(f"{action} of `{run_id}` was already requested by <@{first}>.")


def _allowed(ports: Ports, actions: Any, user_id: str) -> bool:
    try:
        allowed = is_allowed(actions, user_id, user_groups(ports))
    except UserGroupLookupFailed:
        allowed = False
    if not allowed:
        log.warning("slack_action_denied", user=user_id)
    return allowed


def _denied(user_id: str, pipeline: str) -> dict[str, Any]:
    return ephemeral(
        f"<@{user_id}> may not act on `{pipeline}`: ask its owners to add you (or your user "
        "group) to the registry's `actions.allowed_users` / `actions.allowed_user_groups`."
    )


__all__ = ["CommandNotPublished", "Reply", "answer_slack_request"]
