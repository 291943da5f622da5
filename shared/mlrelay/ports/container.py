"""`Ports`: the implementation of every port, chosen from the settings in one place, once per
process.

The shared ports (publisher, store, registry) are chosen here. A service's own port (the
snapshotter's warehouse, the deployer's pipeline backend per pipeline, the notifier's chat) is
built on first use by the builder the service passes, or is the one given to the constructor
(the local runtime and tests). A Cloud Function builds its `Ports` lazily on the first event
(clients are reused across events); the local runtime builds one with the in-process bus and
installs it with `use_ports`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from functools import cached_property

from mlrelay.config.settings import Settings
from mlrelay.contracts import (
    DeployRequest,
    LifecycleEvent,
    Message,
    RunCommand,
    RunRequest,
    SnapshotRequest,
)
from mlrelay.errors import ConfigurationError
from mlrelay.logs import configure_logging
from mlrelay.ports.protocols import (
    ModelEndpoint,
    ObjectStore,
    PipelineBackend,
    Publisher,
    Warehouse,
)
from mlrelay.registry import Registry, load_registry


class Ports:
    def __init__(
        self,
        settings: Settings,
        *,
        publisher: Publisher | None = None,
        store: ObjectStore | None = None,
        registry: Registry | None = None,
        warehouse: Warehouse | None = None,
        pipeline_backends: Mapping[str, PipelineBackend] | None = None,
        chat: object | None = None,
        model_endpoints: Mapping[str, ModelEndpoint] | None = None,
    ) -> None:
        self.settings = settings
        self._publisher = publisher
        self._store = store
        self._registry = registry
        self._warehouse = warehouse
        self._pipeline_backends: dict[str, PipelineBackend] = dict(pipeline_backends or {})
        self._chat = chat
        self._model_endpoints: dict[str, ModelEndpoint] = dict(model_endpoints or {})
        self._lock = threading.RLock()

    @cached_property
    def publisher(self) -> Publisher:
        if self._publisher is not None:
            return self._publisher
        if self.settings.mode == "embedded":
            raise ConfigurationError(
                "MLRELAY_MODE",
                "embedded mode publishes through the in-process bus, which is not "
                "running in this process",
                "use `mlrelay run`, or set MLRELAY_MODE=google",
            )
        from mlrelay.adapters.pubsub_publisher import PubSubPublisher

        return PubSubPublisher(self.settings.project)

    @cached_property
    def store(self) -> ObjectStore:
        if self._store is not None:
            return self._store
        if self.settings.mode == "embedded":
            from mlrelay.adapters.local_folder import LocalFolderStore

            return LocalFolderStore(self.settings.bucket_dir)
        from mlrelay.adapters.gcs_store import GcsStore

        return GcsStore(
            self.settings.bucket,
            self.settings.project,
            timeout_seconds=self.settings.http_timeout_seconds,
        )

    @cached_property
    def registry(self) -> Registry:
        return self._registry or load_registry(self.settings.registry_path)

    def warehouse(self, build: Callable[[Ports], Warehouse]) -> Warehouse:
        """The snapshotter's warehouse: the one given, else `build(self)`, once."""
        with self._lock:
            if self._warehouse is None:
                self._warehouse = build(self)
            return self._warehouse

    def use_warehouse(self, warehouse: Warehouse) -> None:
        """Replace the warehouse (a test wraps the real one to inject a crash)."""
        with self._lock:
            self._warehouse = warehouse

    def pipeline_backend(
        self, pipeline: str, build: Callable[[Ports], PipelineBackend]
    ) -> PipelineBackend:
        """The deployer's backend of one pipeline: the one given, else `build(self)`, once."""
        with self._lock:
            if pipeline not in self._pipeline_backends:
                self._pipeline_backends[pipeline] = build(self)
            return self._pipeline_backends[pipeline]

    def model_endpoint(
        self, pipeline: str, build: Callable[[Ports], ModelEndpoint]
    ) -> ModelEndpoint:
        """The deployer's model registry and endpoint of one pipeline's `promotion:`: the one
        given, else `build(self)`, once."""
        with self._lock:
            if pipeline not in self._model_endpoints:
                self._model_endpoints[pipeline] = build(self)
            return self._model_endpoints[pipeline]

    def chat(self, build: Callable[[Ports], object]) -> object:
        """The notifier's chat: the one given (any object its notifier can adapt), else
        `build(self)`, once. The notifier owns the `Chat` protocol: it depends on its messages."""
        with self._lock:
            if self._chat is None:
                self._chat = build(self)
            return self._chat

    def publish(self, message: Message, attributes: Mapping[str, str] | None = None) -> str:
        """Publish `message` with its own attributes, plus `attributes` (how it was asked for)."""
        return self.publisher.publish(
            topic_for(self.settings, message),
            message.to_json(),
            {**message.attributes(), **(attributes or {})},
        )


def topic_for(settings: Settings, message: Message) -> str:
    topics = settings.topics
    by_kind = {
        RunRequest.kind: topics.runs,
        SnapshotRequest.kind: topics.snapshots,
        DeployRequest.kind: topics.deploys,
        LifecycleEvent.kind: topics.lifecycle,
        RunCommand.kind: topics.commands,
    }
    return by_kind[message.kind]


_current: Ports | None = None
_current_lock = threading.Lock()


def use_ports(ports: Ports | None) -> None:
    """Install the ports every handler in this process uses (None: rebuild from the env)."""
    global _current
    with _current_lock:
        _current = ports


def current_ports() -> Ports:
    global _current
    with _current_lock:
        if _current is None:
            settings = Settings.from_env()
            configure_logging(settings.log_format, settings.log_level)
            _current = Ports(settings)
        return _current
