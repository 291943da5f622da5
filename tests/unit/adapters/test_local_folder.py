"""The bucket on a local folder (mlrelay.adapters.local_folder): create-only writes,
compare-and-swap at a generation, and keys that stay inside the bucket."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlrelay.adapters.local_folder import LocalFolderStore


@pytest.fixture
def store(tmp_path: Path) -> LocalFolderStore:
    return LocalFolderStore(tmp_path / "bucket")


def test_create_only_write_refuses_an_existing_key(store: LocalFolderStore) -> None:
    assert store.create("a/b.json", b"1")
    assert not store.create("a/b.json", b"2")
    assert store.read("a/b.json") == b"1"


def test_compare_and_swap_needs_the_current_generation(store: LocalFolderStore) -> None:
    store.create("k", b"1")
    _, generation = store.read_versioned("k") or (b"", "")
    assert store.replace("k", b"2", generation)
    assert not store.replace("k", b"3", generation)
    assert store.read("k") == b"2"


def test_keys_cannot_escape_the_bucket(store: LocalFolderStore) -> None:
    with pytest.raises(ValueError, match="escapes"):
        store.read("../../etc/passwd")
