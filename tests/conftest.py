"""Shared fixtures: a throw-away mlrelay home, the real handlers on the local bus, and a chat
channel that records what people would read."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from mlrelay.config.settings import Settings
from mlrelay.contracts import LifecycleEvent
from mlrelay.ports.container import use_ports
from mlrelay.stage.envelope import PubsubMessage
from mlrelay_tools.demo import seed_demo_warehouse
from mlrelay_tools.local.runtime import LocalRuntime, build_local_runtime

# CI has 2 cores shared with emulators and kfp subprocesses: judge properties, not timing
hypothesis_settings.register_profile(
    "mlrelay", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=100
)
hypothesis_settings.load_profile("mlrelay")

REPO = Path(__file__).resolve().parents[1]
REGISTRY = REPO / "pipelines" / "registry.yaml"


@dataclass
class RecordingChat:
    name: str = "recording"
    plain_text: bool = True
    posts: list[str] = field(default_factory=list)

    def post(self, text: str, blocks: list[dict[str, Any]] | None = None) -> None:
        self.posts.append(text)


@dataclass
class Capture:
    lifecycle_topic: str
    events: list[LifecycleEvent] = field(default_factory=list)
    messages: list[tuple[str, PubsubMessage]] = field(default_factory=list)

    def __call__(self, topic: str, message: PubsubMessage) -> None:
        self.messages.append((topic, message))
        if topic == self.lifecycle_topic:
            self.events.append(LifecycleEvent.model_validate(json.loads(message.data)))

    def types(self) -> list[str]:
        return [e.event_type for e in self.events]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        home=tmp_path / "home",
        registry_path=REGISTRY,
        max_delivery_attempts=3,
        min_backoff_seconds=0.01,
        max_backoff_seconds=0.05,
    )


@pytest.fixture
def channel() -> RecordingChat:
    return RecordingChat()


def make_runtime(settings: Settings, channel: RecordingChat, **kwargs: Any) -> LocalRuntime:
    seed_demo_warehouse(settings.warehouse_path)
    return build_local_runtime(settings, chat=channel, **kwargs)


@pytest.fixture
def runtime(settings: Settings, channel: RecordingChat) -> Iterator[LocalRuntime]:
    yield make_runtime(settings, channel)
    use_ports(None)


@pytest.fixture
def capture(runtime: LocalRuntime) -> Capture:
    cap = Capture(runtime.settings.topics.lifecycle)
    runtime.bus.listen(cap)
    return cap
