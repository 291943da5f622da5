"""The manifest's file checksums: sha256 (hex) and crc32c (base64, as GCS reports it)."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

from mlrelay_snapshotter.checksums import RunningChecksums, file_checksums


def test_known_answers(tmp_path: Path) -> None:
    path = tmp_path / "check.bin"
    path.write_bytes(b"123456789")
    sha256, crc32c = file_checksums(path)
    assert sha256 == "15e2b0d3c33891ebb0f1ef609ec419420c20e320ce94c65fbc8c3312448eb225"
    assert base64.b64decode(crc32c) == bytes.fromhex("e3069283")  # CRC-32C's check value


def test_a_file_of_many_chunks_matches_the_streamed_checksums(tmp_path: Path) -> None:
    data = os.urandom(9 * 1024 * 1024 + 17)  # past two read chunks, not a multiple of one
    path = tmp_path / "part-0.parquet"
    path.write_bytes(data)
    streamed = RunningChecksums()
    for start in range(0, len(data), 65_536):
        streamed.update(memoryview(data)[start : start + 65_536])
    assert file_checksums(path) == (streamed.sha256, streamed.crc32c)
    assert streamed.sha256 == hashlib.sha256(data).hexdigest()
