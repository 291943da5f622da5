"""Cold start as a scale-up pays it: a fresh functions-framework process per function, in google
mode against the Pub/Sub and GCS emulators, timed from process spawn to its first message
answered 2xx (so the imports, the settings, the clients and the registry parse all count).

Beside them, measured the same way in the same run (round robin, so load hits every column
alike): the floor, a bare functions-framework function that only acknowledges, and a bare
function that imports `google.cloud.aiplatform` at module top as common samples do. Each column
is the median of `--runs` (default 5) after one dropped warm-up start (bytecode caches).

The first message of each function: trigger, a RunRequest for the demo pipeline (accepted:
registry, claim on GCS, SnapshotRequest published); notifier, a pipeline-succeeded
LifecycleEvent (claim on GCS, posted with a bot token to a loopback fake Slack, as in the
cloud); snapshotter and deployer, a well-formed request for a pipeline the registry does not
name (registry parsed, the message kept on GCS and a `rejected` event published). The last two
therefore do not build their warehouse or Vertex AI client: that import is paid by the first
real snapshot or deploy, not measured here.

Each service runs from its `mlrelay package` folder on a venv installed from its own lock with
`--require-hashes` (under `--venvs`, default `.bench/venvs`, made on first use: minutes), which
is what the function gets on Cloud Functions, not the dev venv with its extra packages (rich
there, for one, makes structlog import it). The floor runs on the trigger's venv, the
aiplatform function on the deployer's (the one lock with google-cloud-aiplatform).

Goals: trigger and notifier at most 2x the floor, snapshotter and deployer at most 3x. Exit 1
when one is missed. Run from the repo root: `.venv/bin/python bench/coldstart.py`.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import importlib
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mlrelay.config.topics import Topics  # noqa: E402 (after the repo is on the path)
from mlrelay.contracts import (  # noqa: E402
    DeployRequest,
    LifecycleEvent,
    Message,
    RunRequest,
    SnapshotRef,
    SnapshotRequest,
)

PROJECT = "mlrelay-coldstart"
BUCKET = "mlrelay-coldstart-bucket"
GOALS = {"trigger": 2.0, "notifier": 2.0, "snapshotter": 3.0, "deployer": 3.0}  # x the floor
BARE = """import functions_framework
{extra}

@functions_framework.cloud_event
def ack(event):
    return None
"""
SLACK_TOKEN = "coldstart-bot-token"  # noqa: S105 (the loopback fake Slack's)
UNKNOWN_PIPELINE = "coldstart-probe"  # not in the registry: snapshotter and deployer reject it


@dataclass(frozen=True)
class Column:
    name: str
    folder: Path
    target: str
    venv: str  # the service whose locked venv runs it
    message: Callable[[int], Message | None]  # None: any body (the bare functions ignore it)
    env: dict[str, str] = field(default_factory=dict)  # on top of the common environment


def _accepted_at() -> datetime:
    return datetime.now(UTC)


def _snapshot_request(n: int) -> SnapshotRequest:
    return SnapshotRequest(
        run_id=f"coldstart-{n}",
        pipeline=UNKNOWN_PIPELINE,
        parameters={},
        logical_time=_accepted_at(),
        trigger="manual",
        accepted_at=_accepted_at(),
    )


def _deploy_request(n: int) -> DeployRequest:
    return DeployRequest(
        run_id=f"coldstart-{n}",
        pipeline=UNKNOWN_PIPELINE,
        parameters={},
        logical_time=_accepted_at(),
        trigger="manual",
        accepted_at=_accepted_at(),
        snapshot=SnapshotRef(
            manifest_uri=f"gs://{BUCKET}/snapshots/coldstart-{n}/manifest.json",
            fingerprint="0" * 64,
            row_count=1,
            total_bytes=1,
            file_count=1,
        ),
    )


def _lifecycle_event(n: int) -> LifecycleEvent:
    return LifecycleEvent(
        run_id=f"coldstart-{n}",
        pipeline="penguins",
        stage="pipeline",
        status="succeeded",
        summary="pipeline penguins succeeded",
    )


def function_venv(venvs: Path, service: str) -> Path:
    """The python of a venv installed from the service's lock, (re)made when the lock changed."""
    venv = venvs / service
    lock = REPO / "services" / service / "requirements.lock"
    marker = venv / "installed-lock.sha256"  # written once the install finished
    digest = hashlib.sha256(lock.read_bytes()).hexdigest()
    if not marker.exists() or marker.read_text() != digest:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        command = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        subprocess.run([*command, "--require-hashes", "-r", str(lock)], check=True)
        marker.write_text(digest)
    return venv / "bin" / "python"


def columns(workdir: Path, slack_api_url: str) -> list[Column]:
    bare = []
    for name, extra, venv in [
        ("floor (bare ack)", "", "trigger"),
        ("bare + import aiplatform", "import google.cloud.aiplatform  # noqa: F401", "deployer"),
    ]:
        folder = workdir / name.split()[0].replace("(", "")
        folder.mkdir()
        (folder / "main.py").write_text(BARE.format(extra=extra))
        bare.append(Column(name, folder, "ack", venv, lambda n: None))
    packaging = importlib.import_module("mlrelay_tools.packaging")
    services = workdir / "functions"
    for service in GOALS:
        packaging.package_service(service, REPO, REPO / "pipelines" / "registry.yaml", services)
    return [
        *bare,
        Column(
            "trigger",
            services / "trigger",
            "on_run_request",
            "trigger",
            lambda n: RunRequest(pipeline="penguins", dedup_key=f"coldstart-{n}"),
        ),
        Column(
            "notifier",
            services / "notifier",
            "on_lifecycle_event",
            "notifier",
            _lifecycle_event,
            # as in the cloud: a bot token, so slack_sdk is imported and Slack is called
            {"SLACK_BOT_TOKEN": SLACK_TOKEN, "MLRELAY_SLACK_API_URL": slack_api_url},
        ),
        Column(
            "snapshotter",
            services / "snapshotter",
            "on_snapshot_request",
            "snapshotter",
            _snapshot_request,
        ),
        Column("deployer", services / "deployer", "on_deploy_request", "deployer", _deploy_request),
    ]


def push_body(message: Message | None) -> bytes:
    data = message.to_json() if message is not None else b"{}"
    attributes = message.attributes() if message is not None else {}
    return json.dumps(
        {
            "message": {
                "data": base64.b64encode(data).decode(),
                "attributes": attributes,
                "messageId": str(time.time_ns()),
                "publishTime": _accepted_at().isoformat(),
            },
            "subscription": f"projects/{PROJECT}/subscriptions/coldstart",
        }
    ).encode()


def post(port: int, body: bytes) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/", data=body, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310 (loopback)
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass(frozen=True)
class Start:
    listening: float  # spawn -> the port accepts (interpreter, imports, server)
    answered: float  # spawn -> the first message answered 2xx (plus settings, clients, work)


def cold_start(column: Column, n: int, python: Path, env: dict[str, str], workdir: Path) -> Start:
    """Seconds from spawning the process to its port listening and to its first 2xx answer."""
    peers = importlib.import_module("tests.integration.peers")
    port = peers.free_port()
    body = push_body(column.message(n))
    log = workdir / f"{column.target}-{column.folder.name}-{n}.log"
    command = [str(python), "-m", "functions_framework", "--target", column.target]
    command += ["--signature-type", "cloudevent", "--source", "main.py"]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as out:
        start = time.perf_counter()
        process = subprocess.Popen(
            command,
            cwd=column.folder,
            env={**env, **column.env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        while not listening(port):
            if process.poll() is not None:
                raise RuntimeError(f"{column.name} exited: {log.read_text()[-2000:]}")
            time.sleep(0.005)
        listened = time.perf_counter() - start
        status = post(port, body)
        answered = time.perf_counter() - start
    finally:
        process.terminate()
        process.wait(timeout=20)
    if not 200 <= status < 300:
        raise RuntimeError(f"{column.name} answered {status}: {log.read_text()[-2000:]}")
    return Start(listened, answered)


def prepare_emulators(pubsub: str, gcs: str) -> None:
    os.environ["PUBSUB_EMULATOR_HOST"], os.environ["STORAGE_EMULATOR_HOST"] = pubsub, gcs
    from google.cloud import pubsub_v1, storage  # type: ignore[attr-defined,unused-ignore]

    storage.Client(project=PROJECT).create_bucket(BUCKET)
    publisher = pubsub_v1.PublisherClient()
    for topic in Topics().all():
        publisher.create_topic(name=publisher.topic_path(PROJECT, topic))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--venvs", type=Path, default=REPO / ".bench" / "venvs")
    args = parser.parse_args()
    with ThreadPoolExecutor(max_workers=2) as pool:
        pythons = dict(
            zip(GOALS, pool.map(lambda s: function_venv(args.venvs, s), GOALS), strict=True)
        )
    peers = importlib.import_module("tests.integration.peers")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        fake_slack = importlib.import_module("tests.fakes.slack").FakeSlack
        with (
            peers.pubsub_emulator(workdir) as pubsub,
            peers.gcs_emulator(workdir) as gcs,
            fake_slack(token=SLACK_TOKEN) as slack,
        ):
            slack.add_channel("#ml-training")  # the demo pipeline's notify.slack_channel
            prepare_emulators(pubsub, gcs)
            env = {  # what Cloud Functions gives a function, plus the emulators
                "PATH": os.environ["PATH"],
                "HOME": os.environ.get("HOME", "/tmp"),
                "K_SERVICE": "mlrelay-coldstart",
                "MLRELAY_MODE": "google",
                "GOOGLE_CLOUD_PROJECT": PROJECT,
                "MLRELAY_BUCKET": BUCKET,
                "MLRELAY_REGISTRY": "registry/registry.yaml",  # in the package folder
                "PUBSUB_EMULATOR_HOST": pubsub,
                "STORAGE_EMULATOR_HOST": gcs,
            }
            cols = columns(workdir, slack.api_url)
            samples: dict[str, list[Start]] = {c.name: [] for c in cols}
            for n in range(args.runs + 1):  # round robin; the first round warms the caches
                for column in cols:
                    measured = cold_start(column, n, pythons[column.venv], env, workdir)
                    if n:
                        samples[column.name].append(measured)
    return report(samples, args.runs)


def report(samples: dict[str, list[Start]], runs: int) -> int:
    floor = statistics.median(s.answered for s in samples["floor (bare ack)"])
    print(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, median of {runs} cold starts; "
        "listening: spawn -> port open, answered: spawn -> first 2xx"
    )
    print(
        f"{'function':<26}{'listening s':>12}{'answered s':>11}{'min s':>7}{'max s':>7}"
        f"{'x floor':>9}{'goal':>6}"
    )
    missed = 0
    for name, starts in samples.items():
        answered = [s.answered for s in starts]
        median = statistics.median(answered)
        goal = GOALS.get(name)
        verdict = ""
        if goal is not None:
            ok = median <= goal * floor
            missed += not ok
            verdict = "meets goal" if ok else "MISSES goal"
        print(
            f"{name:<26}{statistics.median(s.listening for s in starts):>12.2f}{median:>11.2f}"
            f"{min(answered):>7.2f}{max(answered):>7.2f}{median / floor:>8.2f}x"
            f"{(f'{goal:.0f}x' if goal else ''):>6}  {verdict}"
        )
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
