"""File checksums recorded in the manifest: sha256 (hex) and crc32c (base64, as GCS reports it)."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import google_crc32c

_CHUNK = 1 << 20


def file_checksums(path: Path) -> tuple[str, str]:
    sha = hashlib.sha256()
    crc = google_crc32c.Checksum()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            sha.update(chunk)
            crc.update(chunk)
    return sha.hexdigest(), base64.b64encode(crc.digest()).decode()
