"""Configuration, read once from the environment into typed settings (docs/configuration.md).

`Settings` holds what every function reads; a service's own section (`SnapshotSettings`,
`ChatSettings`, `DeployerSettings`) is read from the same environment the first time that
service asks for it, so a function reads only the settings it needs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar

from mlrelay.config.chat import ChatSettings
from mlrelay.config.deployer import DeployerSettings
from mlrelay.config.env import (
    Secret,
    choice,
    env_vars,
    name_map,
    path,
    positive_int,
    read_section,
    seconds,
    setting,
    upper,
)
from mlrelay.config.interactions import InteractionSettings
from mlrelay.config.snapshot import SnapshotSettings
from mlrelay.config.topics import Topics
from mlrelay.errors import ConfigurationError

__all__ = ["Mode", "Secret", "Settings"]

Mode = Literal["embedded", "google"]
S = TypeVar("S")


@dataclass(frozen=True)
class Settings:
    """The common settings: the mode, where things live, logs, timeouts and claim leases."""

    mode: Mode = setting(
        "MLRELAY_MODE",
        "`embedded`: one machine, in-process bus, DuckDB, a local folder, kfp.local; "
        "`google`: Pub/Sub, BigQuery, GCS, Vertex AI or a KFP host.",
        default="embedded",
        parse=choice("embedded", "google"),
    )
    home: Path = setting(
        "MLRELAY_HOME",
        "Embedded mode: the folder holding the bucket (`bucket/`), the DuckDB warehouse and "
        "local pipeline runs.",
        default=Path(".mlrelay"),
        parse=path,
    )
    registry_path: Path = setting(
        "MLRELAY_REGISTRY",
        "The pipeline registry file (a deployed function has its copy in `registry/`).",
        default=Path("pipelines/registry.yaml"),
        parse=path,
    )
    project: str = setting(
        "GOOGLE_CLOUD_PROJECT",
        "The Google Cloud project (required in google mode; `local` in embedded mode).",
        default="local",
    )
    bucket: str = setting(
        "MLRELAY_BUCKET",
        "Google mode: the GCS bucket holding snapshots, the run ledger, rejected messages and "
        "dead letters (required in google mode).",
        default="",
    )
    topics: Topics = field(default_factory=Topics, metadata={"section": Topics})
    log_format: Literal["json", "console"] = setting(
        "MLRELAY_LOG_FORMAT",
        "`json` (Cloud Logging's shape; the default inside a Cloud Function) or `console`.",
        default="console",
        parse=choice("json", "console"),
    )
    log_level: str = setting(
        "MLRELAY_LOG_LEVEL", "DEBUG, INFO, WARNING or ERROR.", default="INFO", parse=upper
    )
    max_delivery_attempts: int = setting(
        "MLRELAY_MAX_DELIVERY_ATTEMPTS",
        "Embedded bus: deliveries of one message before it is dead-lettered (on Google Cloud the "
        "subscription's dead-letter policy decides, set in infra/).",
        default=5,
        parse=positive_int(5),
    )
    min_backoff_seconds: float = setting(None, "Embedded bus: first redelivery delay.", default=0.1)
    max_backoff_seconds: float = setting(
        None, "Embedded bus: longest redelivery delay.", default=5.0
    )
    bus_workers: int = setting(
        "MLRELAY_BUS_WORKERS",
        "Embedded bus: deliveries at the same time (the runs of one fan-out tick overlap).",
        default=4,
        parse=positive_int(4),
    )
    http_timeout_seconds: float = setting(
        "MLRELAY_HTTP_TIMEOUT_SECONDS",
        "One HTTP request to GCS, BigQuery, Vertex AI, a KFP host or Slack: past this without an "
        "answer it counts as failed (the client retries within its budget, then Pub/Sub "
        "redelivers).",
        default=30.0,
        parse=seconds(30.0),
    )
    claim_lease_seconds: int = setting(
        "MLRELAY_CLAIM_LEASE_SECONDS",
        "A stage's claim lease, renewed every third of it while the stage works: how long after "
        "a worker dies mid-stage a redelivery may take its claim over.",
        default=90,
        parse=positive_int(90),
    )
    subscription_topics: Mapping[str, str] = setting(
        "MLRELAY_SUBSCRIPTION_TOPICS",
        "JSON object subscription -> topic, for subscriptions not named after their function, "
        "so a dead letter from them can be replayed to its topic.",
        default_factory=dict,
        parse=name_map,
    )
    # sections given in code (tests); any other is read from `env` the first time it is asked for
    sections: tuple[Any, ...] = field(default=(), repr=False)
    env: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def claim_lease(self) -> timedelta:
        return timedelta(seconds=self.claim_lease_seconds)

    @property
    def bucket_dir(self) -> Path:
        return self.home / "bucket"

    @property
    def warehouse_path(self) -> Path:
        return self.home / "warehouse.duckdb"

    def section(self, kind: type[S]) -> S:
        """A service's own settings: as given, else read from the environment once."""
        for given in self.sections:
            if isinstance(given, kind):
                return given
        read: dict[type[Any], Any] = self.__dict__.setdefault("_read_sections", {})
        if kind not in read:
            read[kind] = read_section(kind, self.env)
        found: S = read[kind]
        return found

    def read_every_section(self) -> Settings:
        """Read every service's section now (the CLI runs all the services: a bad value is
        refused before anything starts, not inside the first stage that needs it)."""
        for kind in SECTIONS:
            if kind not in (Settings, Topics):
                self.section(kind)
        return self

    @property
    def snapshot(self) -> SnapshotSettings:
        return self.section(SnapshotSettings)

    @property
    def chat(self) -> ChatSettings:
        return self.section(ChatSettings)

    @property
    def deployer(self) -> DeployerSettings:
        return self.section(DeployerSettings)

    @property
    def interactions(self) -> InteractionSettings:
        return self.section(InteractionSettings)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        environ = os.environ if env is None else env
        in_cloud = "K_SERVICE" in environ or "FUNCTION_TARGET" in environ
        env = {name: value for name, value in environ.items() if _declared(name)}  # kept: ours only
        mode = env.get("MLRELAY_MODE", "embedded")
        given: dict[str, Any] = {
            "topics": Topics.from_env(env),
            "env": env,
            "project": env.get("GOOGLE_CLOUD_PROJECT", "local" if mode == "embedded" else ""),
        }
        if "MLRELAY_LOG_FORMAT" not in env:
            given["log_format"] = "json" if in_cloud else "console"
        settings = read_section(cls, env, **given)
        if settings.mode == "google":
            for name, value in (
                ("GOOGLE_CLOUD_PROJECT", settings.project),
                ("MLRELAY_BUCKET", settings.bucket),
            ):
                if not value:
                    raise ConfigurationError(
                        name, "is not set", f"set {name} for MLRELAY_MODE=google"
                    )
        return settings


SECTIONS: tuple[type[Any], ...] = (
    Settings,
    Topics,
    SnapshotSettings,
    ChatSettings,
    DeployerSettings,
    InteractionSettings,
)
"""Every settings section, in the order docs/configuration.md lists them."""


def _declared(name: str) -> bool:
    """A variable some section reads (its exact name, or a family prefix)."""
    for section in SECTIONS:
        for _, var in env_vars(section):
            if var.name is not None and (
                name == var.name or (var.prefix and name.startswith(var.name))
            ):
                return True
    return False
