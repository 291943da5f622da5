"""File checksums recorded in the manifest: sha256 (hex) and crc32c (base64, as GCS reports it)."""

from __future__ import annotations

import base64
import hashlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import google_crc32c

_CHUNK = 4 << 20


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
    """sha256 and crc32c of a file, side by side: sha256 (most of the cost; hashlib releases the
    GIL) on a second thread while this one computes crc32c, each reading the file from the page
    cache."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        sha256 = pool.submit(_sha256_of, path)
        crc = google_crc32c.Checksum()
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                crc.update(chunk)
        return sha256.result(), base64.b64encode(crc.digest()).decode()


def _sha256_of(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
