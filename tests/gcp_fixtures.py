"""Fixtures for the Google backend's tests: the GCS emulator (fake-gcs-server) and the BigQuery
emulator (local-bigquery) on loopback, the official clients pointed at them, and ports wired in
google mode around them. Import the fixtures into a test module to use them."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from mlrelay.adapters.gcs_store import GcsStore
from mlrelay.config.settings import Settings
from mlrelay.config.snapshot import SnapshotSettings
from mlrelay.ports.container import Ports
from mlrelay.registry import parse_registry

from .helpers import REGISTRY, RecordingPublisher
from .peers import BigQueryPeer, bigquery_emulator, gcs_emulator

PROJECT = "mlrelay-test"
_names = itertools.count()


@pytest.fixture(scope="module")
def gcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The GCS emulator; STORAGE_EMULATOR_HOST points the storage client (and BigQuery's exports)
    at it for the module."""
    with gcs_emulator(tmp_path_factory.mktemp("gcs")) as url:
        previous = os.environ.get("STORAGE_EMULATOR_HOST")
        os.environ["STORAGE_EMULATOR_HOST"] = url
        try:
            yield url
        finally:
            if previous is None:
                os.environ.pop("STORAGE_EMULATOR_HOST", None)
            else:
                os.environ["STORAGE_EMULATOR_HOST"] = previous


@pytest.fixture(scope="module")
def bq(gcs: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BigQueryPeer]:
    with bigquery_emulator(tmp_path_factory.mktemp("bigquery"), gcs, PROJECT) as peer:
        yield peer


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
