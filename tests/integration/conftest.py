"""Fixtures of the integration tier: Google's Pub/Sub emulator, the GCS emulator
(fake-gcs-server) and the BigQuery emulator (local-bigquery) on loopback, one of each per test
module that asks for it, with the official clients pointed at them for that module
(tests/integration/peers.py starts and stops them)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.integration.google_backend import PROJECT
from tests.integration.peers import BigQueryPeer, bigquery_emulator, gcs_emulator, pubsub_emulator


@contextmanager
def environment(name: str, value: str) -> Iterator[None]:
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


@pytest.fixture(scope="module")
def pubsub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The Pub/Sub emulator; PUBSUB_EMULATOR_HOST points the clients at it for the module."""
    with (
        pubsub_emulator(tmp_path_factory.mktemp("pubsub")) as host,
        environment("PUBSUB_EMULATOR_HOST", host),
    ):
        yield host


@pytest.fixture(scope="module")
def gcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The GCS emulator; STORAGE_EMULATOR_HOST points the storage client (and BigQuery's exports)
    at it for the module."""
    with (
        gcs_emulator(tmp_path_factory.mktemp("gcs")) as url,
        environment("STORAGE_EMULATOR_HOST", url),
    ):
        yield url


@pytest.fixture(scope="module")
def bq(gcs: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BigQueryPeer]:
    with bigquery_emulator(tmp_path_factory.mktemp("bigquery"), gcs, PROJECT) as peer:
        yield peer
