"""Configuration, read once from the environment into a typed object (documented in the README)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Literal

from mlrelay.config.snapshot import SnapshotSettings
from mlrelay.config.topics import Topics
from mlrelay.errors import PermanentError

Mode = Literal["embedded", "google"]


@dataclass(frozen=True, repr=False)
class Secret:
    """A value that never prints: repr/str show only whether it is set."""

    value: str = ""

    def __bool__(self) -> bool:
        return bool(self.value)

    def __repr__(self) -> str:
        return "Secret(set)" if self.value else "Secret(unset)"

    __str__ = __repr__


SLACK_WEBHOOK_PREFIX = "SLACK_WEBHOOK_URL_"


@dataclass(frozen=True)
class ChatSettings:
    """Slack (notifier). Secrets come from Secret Manager as secret env vars in the cloud."""

    bot_token: Secret = field(default_factory=Secret)
    # named webhooks for the registry's `notify.slack_webhook: NAME` (env SLACK_WEBHOOK_URL_NAME)
    webhooks: Mapping[str, Secret] = field(default_factory=dict)
    default_channel: str = ""  # bot mode: where events without a pipeline channel go
    api_url: str = "https://slack.com/api/"
    min_interval_seconds: float = 1.0  # between posts to one channel, per process

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ChatSettings:
        prefix = SLACK_WEBHOOK_PREFIX
        webhooks = {
            name.removeprefix(prefix).lower(): Secret(value)
            for name, value in env.items()
            if name.startswith(prefix) and len(name) > len(prefix) and value
        }
        raw = env.get("MLRELAY_SLACK_MIN_INTERVAL", "1.0")
        try:
            interval = float(raw)
        except ValueError:
            interval = -1.0
        if not interval >= 0:
            raise PermanentError(
                "MLRELAY_SLACK_MIN_INTERVAL",
                f"{raw!r} is not a number of seconds >= 0",
                "e.g. 1.0: Slack allows about one message per second per channel",
            )
        return cls(
            bot_token=Secret(env.get("SLACK_BOT_TOKEN", "")),
            webhooks=webhooks,
            default_channel=env.get("MLRELAY_SLACK_CHANNEL", ""),
            api_url=env.get("MLRELAY_SLACK_API_URL", "https://slack.com/api/"),
            min_interval_seconds=interval,
        )


@dataclass(frozen=True)
class Settings:
    mode: Mode = "embedded"
    home: Path = Path(".mlrelay")
    registry_path: Path = Path("pipelines/registry.yaml")
    project: str = "local"
    bucket: str = ""
    topics: Topics = field(default_factory=Topics)
    slack_webhook_url: Secret = field(default_factory=Secret)
    chat: ChatSettings = field(default_factory=ChatSettings)
    snapshot: SnapshotSettings = field(default_factory=SnapshotSettings)
    log_format: Literal["json", "console"] = "console"
    log_level: str = "INFO"
    max_delivery_attempts: int = 5
    min_backoff_seconds: float = 0.1
    max_backoff_seconds: float = 5.0
    bus_workers: int = 4  # local bus: deliveries at the same time (fan-out runs overlap)
    # one HTTP request to GCS, BigQuery, Vertex AI, a KFP host or Slack: past this without an
    # answer it counts as failed (the client retries within its budget, then Pub/Sub redelivers)
    http_timeout_seconds: float = 30.0
    # a stage's claim lease, renewed every third of it while the stage works: how long after a
    # worker dies mid-stage a redelivery may take its claim over
    claim_lease_seconds: int = 90
    vertex_endpoint: str = ""  # Vertex AI API endpoint; empty: <region>-aiplatform.googleapis.com
    # subscription -> topic, for subscriptions not named after their function (dead-letter replay)
    subscription_topics: Mapping[str, str] = field(default_factory=dict)

    @property
    def claim_lease(self) -> timedelta:
        return timedelta(seconds=self.claim_lease_seconds)

    @property
    def bucket_dir(self) -> Path:
        return self.home / "bucket"

    @property
    def warehouse_path(self) -> Path:
        return self.home / "warehouse.duckdb"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        mode = env.get("MLRELAY_MODE", "embedded")
        if mode not in ("embedded", "google"):
            raise PermanentError(
                "MLRELAY_MODE", f"{mode!r} is not a mode", "use embedded or google"
            )
        in_cloud = "K_SERVICE" in env or "FUNCTION_TARGET" in env
        log_format = env.get("MLRELAY_LOG_FORMAT", "json" if in_cloud else "console")
        if log_format not in ("json", "console"):
            raise PermanentError("MLRELAY_LOG_FORMAT", f"{log_format!r}", "use json or console")
        settings = cls(
            mode=mode,  # type: ignore[arg-type]
            home=Path(env.get("MLRELAY_HOME", ".mlrelay")),
            registry_path=Path(env.get("MLRELAY_REGISTRY", "pipelines/registry.yaml")),
            project=env.get("GOOGLE_CLOUD_PROJECT", "local" if mode == "embedded" else ""),
            bucket=env.get("MLRELAY_BUCKET", ""),
            topics=Topics.from_env(env),
            slack_webhook_url=Secret(env.get("SLACK_WEBHOOK_URL", "")),
            chat=ChatSettings.from_env(env),
            snapshot=SnapshotSettings.from_env(env),
            log_format=log_format,  # type: ignore[arg-type]
            log_level=env.get("MLRELAY_LOG_LEVEL", "INFO").upper(),
            max_delivery_attempts=_positive_int(env, "MLRELAY_MAX_DELIVERY_ATTEMPTS", 5),
            bus_workers=_positive_int(env, "MLRELAY_BUS_WORKERS", 4),
            http_timeout_seconds=_positive_seconds(env, "MLRELAY_HTTP_TIMEOUT_SECONDS", 30.0),
            claim_lease_seconds=_positive_int(env, "MLRELAY_CLAIM_LEASE_SECONDS", 90),
            vertex_endpoint=env.get("MLRELAY_VERTEX_ENDPOINT", ""),
            subscription_topics=_name_map(env, "MLRELAY_SUBSCRIPTION_TOPICS"),
        )
        if mode == "google":
            for name, value in (
                ("GOOGLE_CLOUD_PROJECT", settings.project),
                ("MLRELAY_BUCKET", settings.bucket),
            ):
                if not value:
                    raise PermanentError(name, "is not set", f"set {name} for MLRELAY_MODE=google")
        return settings


def _positive_seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None:
        return default
    try:
        seconds = float(raw)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds < float("inf"):
        raise PermanentError(name, f"{raw!r} is not a number of seconds > 0", f"e.g. {default}")
    return seconds


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise PermanentError(name, f"{raw!r} is not a positive integer", f"e.g. {name}={default}")
    return int(raw)


def _name_map(env: Mapping[str, str], name: str) -> dict[str, str]:
    raw = env.get(name, "").strip()
    if not raw:
        return {}
    try:
        found = json.loads(raw)
    except ValueError:
        found = None
    if not isinstance(found, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in found.items()
    ):
        raise PermanentError(
            name,
            f"{raw[:80]!r} is not a JSON object of names to names",
            f'e.g. {name}=\'{{"my-subscription": "my-topic"}}\'',
        )
    return dict(found)
