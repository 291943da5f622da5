"""Start and stop real protocol peers on loopback for the tests.

In CI (CI=true) a missing peer fails the run; on a developer machine without it, tests skip
with the reason, so the gap is visible rather than hidden.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

PUBSUB_EMULATOR = Path(
    "/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(
    port: int, process: subprocess.Popen[bytes], log: Path, timeout: float = 60.0
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"peer exited with {process.returncode}: {log.read_text()[-2000:]}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(
        f"peer did not listen on {port} within {timeout}s: {log.read_text()[-2000:]}"
    )


def missing_peer(what: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is required in CI (.ci/run installs it)")
    pytest.skip(f"{what} is not installed on this machine")


@contextmanager
def pubsub_emulator(workdir: Path) -> Iterator[str]:
    """Google's own Pub/Sub emulator; yields host:port for PUBSUB_EMULATOR_HOST."""
    if not PUBSUB_EMULATOR.exists():
        missing_peer("the Pub/Sub emulator (google-cloud-cli-pubsub-emulator)")
    port = free_port()
    log = workdir / "pubsub-emulator.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(PUBSUB_EMULATOR), "--host=127.0.0.1", f"--port={port}"],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for_port(port, process, log)
        yield f"127.0.0.1:{port}"
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=20)
