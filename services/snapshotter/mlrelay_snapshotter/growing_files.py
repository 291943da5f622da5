"""Checksums of files while another writer (DuckDB's COPY) is still appending to them.

sha256 is most of what the manifest costs over a raw COPY (~1.2 GB/s here, against crc32c's
~10 GB/s), and the COPY leaves a core idle much of the time (its Parquet writer is serial), so a
second thread follows each `part-*.parquet` as it grows and feeds its new bytes to sha256 and
crc32c. Once the writer is done, each file's whole crc32c is computed again from the page cache
(the cheap digest) and compared with the follower's: a file whose bytes changed behind the
follower (rewritten, truncated, replaced) is digested again from scratch, so the manifest never
holds a digest of bytes the file does not have.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, TypeVar

import structlog

from mlrelay_snapshotter.checksums import RunningChecksums, crc32c_of, file_checksums

log = structlog.get_logger()

T = TypeVar("T")
_CHUNK = 4 << 20
_IDLE_SECONDS = 0.005


@dataclass
class _Followed:
    handle: BinaryIO
    sums: RunningChecksums = field(default_factory=RunningChecksums)
    size: int = 0


class Follower:
    def __init__(self, folder: Path, pattern: str) -> None:
        self.folder = folder
        self.pattern = pattern
        self.files: dict[Path, _Followed] = {}
        self.done = threading.Event()
        self.failed: str | None = None

    def run(self) -> None:
        try:
            while not self.done.is_set():
                if not self.step():
                    self.done.wait(_IDLE_SECONDS)
            while self.step():  # the writer has finished: read each file to its end
                pass
        except OSError as exc:  # a file vanished or could not be read: digest afterwards
            self.failed = f"{type(exc).__name__}: {exc}"
        finally:
            self.close()

    def close(self) -> None:
        for followed in self.files.values():
            followed.handle.close()

    def step(self) -> bool:
        """Read what was appended since the last step, one chunk per file; False: nothing new."""
        progress = False
        for path in sorted(self.folder.glob(self.pattern)):
            followed = self.files.get(path)
            if followed is None:
                followed = self.files[path] = _Followed(path.open("rb"))
            chunk = followed.handle.read(_CHUNK)
            if chunk:
                followed.sums.update(chunk)
                followed.size += len(chunk)
                progress = True
        return progress


def checksums_while_written(
    folder: Path, pattern: str, write: Callable[[], T]
) -> tuple[T, dict[Path, tuple[str, str]]]:
    """Run `write` (it fills `folder` with files matching `pattern`, appending only) while a
    second thread digests the files as they grow; returns what `write` returned and, for every
    matching file once it is done, (sha256 hex, crc32c base64) of its final bytes."""
    follower = Follower(folder, pattern)
    thread = threading.Thread(target=follower.run, name="checksums", daemon=True)
    thread.start()
    try:
        result = write()
    finally:
        follower.done.set()
        thread.join()
    return result, final_digests(follower)


def final_digests(follower: Follower) -> dict[Path, tuple[str, str]]:
    """Every matching file's digests: the follower's where the file is unchanged, else fresh."""
    digests: dict[Path, tuple[str, str]] = {}
    for path in sorted(follower.folder.glob(follower.pattern)):
        followed = None if follower.failed else follower.files.get(path)
        if followed is not None and _unchanged(path, followed):
            digests[path] = (followed.sums.sha256, followed.sums.crc32c)
        else:
            log.info("checksums_read_again", file=path.name, reason=follower.failed or "changed")
            digests[path] = file_checksums(path)
    return digests


def _unchanged(path: Path, followed: _Followed) -> bool:
    """The finished file is the bytes the follower digested: same size, same crc32c."""
    if path.stat().st_size != followed.size:
        return False
    return crc32c_of(path) == followed.sums.crc32c
