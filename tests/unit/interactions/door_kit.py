"""The interactions function's test set-up: the embedded runtime (its bus records every
command), a registry whose penguins pipeline allows some Slack users and groups, and the real
functions-framework app of services/interactions/main.py."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlrelay.config.env import Secret
from mlrelay.config.interactions import InteractionSettings
from mlrelay.config.settings import Settings
from mlrelay.contracts import RunCommand
from mlrelay.registry import ActionsSpec, Registry, load_registry
from mlrelay_tools.local.runtime import LocalRuntime, build_local_runtime
from tests.helpers import REGISTRY, SLACK_USER, Capture, RecordingChat, http_function_client


def signing_secret() -> str:
    return "8f" * 16  # built at run time: no secret-shaped literal in the tests


@dataclass
class Door:
    runtime: LocalRuntime
    capture: Capture
    client: Any
    secret: str

    def commands(self) -> list[RunCommand]:
        topic = self.runtime.settings.topics.commands
        return [
            RunCommand.model_validate(json.loads(m.data))
            for t, m in self.capture.messages
            if t == topic
        ]

    def published(self) -> int:
        return len(self.capture.messages)

    def post(self, body: bytes, headers: dict[str, str]) -> Any:
        return self.client.post("/", data=body, headers=headers)


def allowing(
    registry: Registry, users: list[str] | None = None, groups: list[str] | None = None
) -> Registry:
    actions = ActionsSpec(allowed_users=users or [], allowed_user_groups=groups or [])
    pipelines = dict(registry.pipelines)
    pipelines["penguins"] = pipelines["penguins"].model_copy(update={"actions": actions})
    return registry.model_copy(update={"pipelines": pipelines})


def open_door(
    home: Path,
    *,
    secret: str | None = None,
    users: list[str] | None = None,
    groups: list[str] | None = None,
    sections: tuple[Any, ...] = (),
    **interaction: Any,
) -> Door:
    given = signing_secret() if secret is None else secret
    settings = Settings(
        home=home,
        registry_path=REGISTRY,
        sections=(InteractionSettings(signing_secret=Secret(given), **interaction), *sections),
    )
    registry = allowing(load_registry(REGISTRY), [SLACK_USER] if users is None else users, groups)
    runtime = build_local_runtime(settings, registry=registry, chat=RecordingChat())
    capture = Capture(settings.topics.lifecycle)
    runtime.bus.listen(capture)
    client = http_function_client("interactions", "on_slack_request")
    return Door(runtime, capture, client, given)
