"""Wire the services' real entry points to the in-process bus."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlrelay.adapters.local_folder import LocalFolderStore
from mlrelay.config.functions import FUNCTIONS
from mlrelay.config.settings import Settings
from mlrelay.ports.container import Ports, use_ports
from mlrelay.ports.protocols import PipelineBackend
from mlrelay.registry import Registry
from mlrelay_tools.local.bus import Handler, LocalBus


@dataclass
class LocalRuntime:
    settings: Settings
    bus: LocalBus
    store: LocalFolderStore
    ports: Ports


def entry_point(package: str, name: str) -> Handler:
    handler: Handler = getattr(importlib.import_module(f"{package}.entry"), name)
    return handler


def build_local_runtime(
    settings: Settings,
    *,
    registry: Registry | None = None,
    chat: object | None = None,
    pipeline_backends: Mapping[str, PipelineBackend] | None = None,
    wrap: Mapping[str, Any] | None = None,
) -> LocalRuntime:
    """One process, four services. `chat` and `pipeline_backends` replace the ones the settings
    choose (a recorder, a backend against a loopback server); `wrap` maps a function name to a
    decorator around its handler (tests use it to inject failures into the real handlers)."""
    store = LocalFolderStore(settings.bucket_dir)
    bus = LocalBus(
        settings.project,
        store,
        max_attempts=settings.max_delivery_attempts,
        min_backoff=settings.min_backoff_seconds,
        max_backoff=settings.max_backoff_seconds,
        workers=settings.bus_workers,
    )
    ports = Ports(
        settings,
        publisher=bus,
        store=store,
        registry=registry,
        chat=chat,
        pipeline_backends=pipeline_backends,
    )
    use_ports(ports)
    for spec in FUNCTIONS:
        handler = entry_point(spec.package, spec.entry_point)
        if wrap and spec.name in wrap:
            handler = wrap[spec.name](handler)
        dead_letter = settings.topics.dead_letter if spec.dead_letters_to_topic else None
        bus.subscribe(
            getattr(settings.topics, spec.topic),
            spec.name,
            handler,
            dead_letter_topic=dead_letter,
            accepts=spec.only.matches if spec.only is not None else None,
        )
    return LocalRuntime(settings, bus, store, ports)
