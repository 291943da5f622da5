"""GcsStore (the ObjectStore port on GCS) against fake-gcs-server, which enforces
`ifGenerationMatch` on uploads: create-only claims and compare-and-swap are real here."""

from __future__ import annotations

import base64
import hashlib
import os
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import google_crc32c
import pytest

from mlrelay.adapters.gcs_store import GcsStore
from mlrelay.errors import ConfigurationError
from mlrelay.stage.ledger import run_once
from tests.fakes.server import Answer, LoopbackServer, Request, json_answer
from tests.integration.google_backend import PROJECT, new_bucket

pytestmark = pytest.mark.usefixtures("gcs")


def test_create_is_create_only() -> None:
    store = new_bucket()
    assert store.create("runs/r/snapshot.json", b"first")
    assert not store.create("runs/r/snapshot.json", b"second")
    assert store.read("runs/r/snapshot.json") == b"first"
    assert store.read("runs/r/missing.json") is None


def test_replace_succeeds_only_at_the_generation_it_read() -> None:
    store = new_bucket()
    store.create("snapshots/d/latest.json", b"v1")
    found = store.read_versioned("snapshots/d/latest.json")
    assert found is not None and found[0] == b"v1"
    assert store.replace("snapshots/d/latest.json", b"v2", found[1])
    assert not store.replace("snapshots/d/latest.json", b"v3", found[1])  # stale generation
    assert store.read("snapshots/d/latest.json") == b"v2"
    store.write("snapshots/d/latest.json", b"v4")
    store.delete("snapshots/d/latest.json")
    store.delete("snapshots/d/latest.json")  # deleting what is gone is fine
    assert store.read_versioned("snapshots/d/latest.json") is None


def test_delete_if_deletes_at_the_generation_it_read() -> None:
    store = new_bucket()
    store.create("runs/r/s.json", b"v1")
    current = store.read_versioned("runs/r/s.json")
    assert current is not None and store.delete_if("runs/r/s.json", current[1]) is True
    assert store.read("runs/r/s.json") is None
    assert store.delete_if("runs/r/s.json", current[1]) is False  # already gone


def test_delete_if_sends_the_generation_and_a_412_keeps_the_object() -> None:
    """fake-gcs-server ignores ifGenerationMatch on DELETE (it enforces it on uploads), so the
    stale-generation case is answered here as GCS documents it: 412 conditionNotMet."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    def respond(request: Request) -> Answer:
        query = parse_qs(urlsplit(request.target).query)
        if query.get("ifGenerationMatch") == ["7"]:
            return Answer(204)
        error = {"code": 412, "message": "conditionNotMet", "errors": [{"reason": "x"}]}
        return json_answer(412, {"error": error})

    with LoopbackServer(respond) as server:
        client = storage.Client(
            project="proj",
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            client_options={"api_endpoint": server.url},
        )
        store = GcsStore("bucket", "proj", client=client, retry_seconds=2)
        assert store.delete_if("runs/r/s.json", "6") is False  # another worker wrote since
        assert store.delete_if("runs/r/s.json", "7") is True
        deletes = [e.request.target for e in server.recorded() if e.request.method == "DELETE"]
        assert ["ifGenerationMatch=6" in deletes[0], "ifGenerationMatch=7" in deletes[1]] == [
            True,
            True,
        ]


def test_a_duplicate_claim_in_the_ledger_reuses_the_recorded_result() -> None:
    store = new_bucket()
    calls = []

    def work() -> dict[str, int]:
        calls.append(1)
        return {"rows": 3}

    first = run_once(store, "runs/r/snapshot.json", "snapshot", work, lease=timedelta(minutes=5))
    again = run_once(store, "runs/r/snapshot.json", "snapshot", work, lease=timedelta(minutes=5))
    assert (first.reused, again.reused, again.result, len(calls)) == (False, True, {"rows": 3}, 1)


def test_streams_larger_than_one_chunk_round_trip_and_report_gcs_checksums() -> None:
    store = new_bucket()
    data = os.urandom(9 * 1024 * 1024 + 17)  # more than one 8 MiB resumable chunk
    with store.open_write("snapshots/d/r/part-00000.parquet") as out:
        for start in range(0, len(data), 1 << 20):
            out.write(data[start : start + (1 << 20)])
    store.create("snapshots/d/r/manifest.json", b"{}")
    with store.open_read("snapshots/d/r/part-00000.parquet") as handle:
        assert hashlib.sha256(handle.read()).digest() == hashlib.sha256(data).digest()
    [manifest, part] = store.objects("snapshots/d/r/")  # sorted by key
    assert part.key.endswith("part-00000.parquet") and manifest.key.endswith("manifest.json")
    assert part.size_bytes == len(data)
    crc = base64.b64encode(google_crc32c.Checksum(data).digest()).decode()  # type: ignore[no-untyped-call]
    assert part.crc32c == crc
    assert store.list("snapshots/d/") == [manifest.key, part.key]


def test_a_missing_bucket_is_a_configuration_error_naming_the_setting() -> None:
    store = GcsStore("no-such-bucket", PROJECT)
    with pytest.raises(ConfigurationError) as caught:  # our set-up: redelivered, not rejected
        store.create("runs/r/x.json", b"{}")
    assert caught.value.field == "MLRELAY_BUCKET"
    assert store.read("runs/r/x.json") is None
