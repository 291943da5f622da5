"""Checksums taken while DuckDB's COPY still appends to the files equal those of the final bytes."""

from __future__ import annotations

import base64
import hashlib
import os
import time
from pathlib import Path

import google_crc32c
from structlog.testing import capture_logs

from mlrelay_snapshotter.growing_files import Follower, checksums_while_written, final_digests


def expected(data: bytes) -> tuple[str, str]:
    crc = base64.b64encode(google_crc32c.Checksum(data).digest()).decode()
    return hashlib.sha256(data).hexdigest(), crc


def test_files_appended_in_pieces_are_digested_as_they_grow(tmp_path: Path) -> None:
    pieces = {name: [os.urandom(3 << 20) for _ in range(4)] for name in ("part-0", "part-1")}

    def write() -> int:
        for name, chunks in pieces.items():
            with (tmp_path / f"{name}.parquet").open("wb") as out:
                for chunk in chunks:
                    out.write(chunk)
                    out.flush()
                    time.sleep(0.05)  # the follower catches up between the writes
        return 42

    with capture_logs() as logs:
        result, digests = checksums_while_written(tmp_path, "part-*.parquet", write)
    assert result == 42
    assert sorted(p.name for p in digests) == ["part-0.parquet", "part-1.parquet"]
    for name, chunks in pieces.items():
        assert digests[tmp_path / f"{name}.parquet"] == expected(b"".join(chunks))
    assert not [e for e in logs if e["event"] == "checksums_read_again"]  # followed, not re-read


def test_bytes_changed_behind_the_follower_are_digested_again(tmp_path: Path) -> None:
    path = tmp_path / "part-0.parquet"
    path.write_bytes(b"A" * 100_000)
    follower = Follower(tmp_path, "part-*.parquet")
    assert follower.step()  # it has read these bytes
    with path.open("r+b") as out:
        out.write(b"B" * 10)  # same size, other bytes: only the crc32c check sees it
    follower.close()
    with capture_logs() as logs:
        digests = final_digests(follower)
    assert digests[path] == expected(b"B" * 10 + b"A" * 99_990)
    assert [e["reason"] for e in logs if e["event"] == "checksums_read_again"] == ["changed"]


def test_a_file_truncated_after_it_was_read_is_digested_again(tmp_path: Path) -> None:
    path = tmp_path / "part-0.parquet"
    path.write_bytes(os.urandom(50_000))
    follower = Follower(tmp_path, "part-*.parquet")
    assert follower.step()
    path.write_bytes(b"short")
    follower.close()
    assert final_digests(follower) == {path: expected(b"short")}
