"""For the Google backend's tests against the emulators (fixtures `gcs` and `bq` in
tests/integration/conftest.py): new buckets, the official clients pointed at the emulators, and
ports wired in google mode around them."""

from __future__ import annotations

import itertools
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from mlrelay.adapters.gcs_store import GcsStore
from mlrelay.config.settings import Settings
from mlrelay.config.snapshot import SnapshotSettings
from mlrelay.ports.container import Ports
from mlrelay.registry import parse_registry
from tests.helpers import REGISTRY, RecordingPublisher
from tests.integration.peers import BigQueryPeer

PROJECT = "mlrelay-test"
_names = itertools.count()


def storage_client() -> Any:
    from google.cloud import storage

    return storage.Client(project=PROJECT)


def new_bucket(prefix: str = "snap") -> GcsStore:
    name = f"{prefix}-{os.getpid()}-{next(_names)}"
    storage_client().create_bucket(name)
    return GcsStore(name, PROJECT)


def bigquery_client(peer: BigQueryPeer) -> Any:
    from mlrelay_snapshotter.warehouses import bigquery_client as build

    return build(PROJECT, snapshot_settings(peer))


def snapshot_settings(peer: BigQueryPeer, **changes: Any) -> SnapshotSettings:
    base = SnapshotSettings(
        bigquery_endpoint=peer.endpoint,
        bigquery_storage_endpoint=peer.storage_endpoint,
        job_wait_seconds=60,
        api_retry_seconds=5,
    )
    return replace(base, **changes)


def google_ports(
    peer: BigQueryPeer,
    store: GcsStore,
    registry_text: str,
    **snapshot_changes: Any,
) -> tuple[Ports, RecordingPublisher]:
    settings = Settings(
        mode="google",
        project=PROJECT,
        bucket=store.bucket.name,
        registry_path=REGISTRY,
        sections=(snapshot_settings(peer, **snapshot_changes),),
    )
    publisher = RecordingPublisher()
    registry = parse_registry(registry_text, "registry.yaml", Path(REGISTRY).parent)
    return Ports(settings, publisher=publisher, store=store, registry=registry), publisher
