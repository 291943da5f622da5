"""Who may act on a pipeline: a user id of its `actions.allowed_users`, or a member of one of its
`actions.allowed_user_groups` (Slack's `usergroups.users.list`, asked with the bot token and
kept for a short while). Empty lists: nobody. Anything Slack does not answer: not allowed."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import structlog

from mlrelay.config.chat import ChatSettings
from mlrelay.errors import ConfigurationError
from mlrelay.registry import ActionsSpec

log = structlog.get_logger()


class UserGroupLookupFailed(Exception):
    """Slack did not say who is in a user group: the click is refused, the user may retry."""


class UserGroups:
    """Members of Slack user groups, each list reused for `ttl_seconds`."""

    def __init__(
        self,
        chat: ChatSettings,
        *,
        ttl_seconds: float,
        timeout_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._chat = chat
        self._ttl = ttl_seconds
        self._timeout = timeout_seconds
        self._clock = clock
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}
        self._lock = threading.Lock()

    def members(self, group: str) -> frozenset[str]:
        now = self._clock()
        with self._lock:
            cached = self._cache.get(group)
        if cached is not None and cached[0] > now:
            return cached[1]
        found = self._ask_slack(group)
        with self._lock:
            self._cache[group] = (now + self._ttl, found)
        return found

    def _ask_slack(self, group: str) -> frozenset[str]:
        if not self._chat.bot_token:
            raise ConfigurationError(
                "SLACK_BOT_TOKEN",
                "is not set, so members of `actions.allowed_user_groups` cannot be looked up",
                "give the interactions function the bot token (scope usergroups:read), or "
                "list users in `actions.allowed_users`",
            )
        from slack_sdk import WebClient
        from slack_sdk.errors import SlackApiError

        client = WebClient(
            token=self._chat.bot_token.value,
            base_url=self._chat.api_url,
            timeout=max(1, round(self._timeout)),
        )
        try:
            answer = client.usergroups_users_list(usergroup=group)
        except SlackApiError as exc:
            log.warning("user_group_lookup_refused", group=group, error=exc.response.get("error"))
            raise UserGroupLookupFailed(group) from None
        except OSError as exc:  # connection refused, timeout (urllib's errors are OSErrors)
            log.warning("user_group_lookup_failed", group=group, error=type(exc).__name__)
            raise UserGroupLookupFailed(group) from None
        users = answer.get("users")
        if not isinstance(users, list):
            raise UserGroupLookupFailed(group)
        return frozenset(u for u in users if isinstance(u, str))


def is_allowed(actions: ActionsSpec, user_id: str, groups: UserGroups) -> bool:
    if user_id in actions.allowed_users:
        return True
    return any(user_id in groups.members(group) for group in actions.allowed_user_groups)
