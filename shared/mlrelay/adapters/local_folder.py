"""A local folder as the bucket, with the same create-only and compare-and-swap semantics as GCS.

Writes go to a temporary file first, so a reader never sees half an object; create-only uses
`os.link`, which fails atomically when the name exists.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


class LocalFolderStore:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        target = (self.root / key).resolve()
        if self.root not in target.parents and target != self.root:
            raise ValueError(f"key {key!r} escapes the bucket folder")
        return target

    def uri(self, key: str) -> str:
        return self.path(key).as_uri()

    def read(self, key: str) -> bytes | None:
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError:
            return None

    def read_versioned(self, key: str) -> tuple[bytes, str] | None:
        target = self.path(key)
        try:
            with target.open("rb") as handle:
                stat = os.fstat(handle.fileno())
                return handle.read(), f"{stat.st_ino}:{stat.st_mtime_ns}"
        except FileNotFoundError:
            return None

    def _temp(self, target: Path, data: bytes) -> Path:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        return Path(name)

    def create(self, key: str, data: bytes) -> bool:
        target = self.path(key)
        temp = self._temp(target, data)
        try:
            os.link(temp, target)
            return True
        except FileExistsError:
            return False
        finally:
            temp.unlink()

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        with (self.root / ".cas.lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def replace(self, key: str, data: bytes, if_generation: str) -> bool:
        target = self.path(key)
        with self._lock():
            current = self.read_versioned(key)
            if current is None or current[1] != if_generation:
                return False
            self._temp(target, data).replace(target)
            return True

    def write(self, key: str, data: bytes) -> None:
        target = self.path(key)
        with self._lock():
            self._temp(target, data).replace(target)

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(key).unlink()

    def delete_if(self, key: str, if_generation: str) -> bool:
        with self._lock():
            current = self.read_versioned(key)
            if current is None or current[1] != if_generation:
                return False
            self.path(key).unlink()
            return True

    def list(self, prefix: str) -> list[str]:
        base = self.path(prefix) if prefix else self.root
        if base.is_file():
            return [prefix]
        if not base.is_dir():
            return []
        found = []
        for path in base.rglob("*"):
            if path.is_file() and not path.name.startswith("."):
                found.append(path.relative_to(self.root).as_posix())
        return sorted(found)
