"""File checksums recorded in the manifest: sha256 (hex) and crc32c (base64, as GCS reports it)."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import google_crc32c

_CHUNK = 1 << 20


class RunningChecksums:
    """sha256 and crc32c of bytes fed in pieces (a stream, never the whole file at once)."""

    def __init__(self) -> None:
        self._sha = hashlib.sha256()
        self._crc = google_crc32c.Checksum()

    def update(self, data: bytes | memoryview) -> None:
        self._sha.update(data)
        self._crc.update(bytes(data) if isinstance(data, memoryview) else data)

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()

    @property
    def crc32c(self) -> str:
        return base64.b64encode(self._crc.digest()).decode()


def file_checksums(path: Path) -> tuple[str, str]:
    sums = RunningChecksums()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            sums.update(chunk)
    return sums.sha256, sums.crc32c
