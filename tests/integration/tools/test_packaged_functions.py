"""Each `mlrelay package` output, unpacked into an empty folder, installed into a fresh venv from
its own requirements.txt (the service's hashed lock, with --require-hashes), started with
functions-framework on loopback, and posted a Pub/Sub push: it must answer correctly with nothing
from the repo on its path (google mode, against the Pub/Sub and GCS emulators)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mlrelay.config.topics import Topics
from mlrelay.contracts import LifecycleEvent, RunRequest, SnapshotRequest
from mlrelay_tools.packaging import SERVICES, package_service
from tests.helpers import REGISTRY, REPO
from tests.integration.peers import free_port, gcs_emulator, pubsub_emulator, wait_for_port

PROJECT = "mlrelay-pkg-test"
BUCKET = "mlrelay-pkg-bucket"


@dataclass
class Deployed:
    service: str
    folder: Path
    python: Path


@dataclass
class World:
    pubsub: str
    gcs: str
    deployed: dict[str, Deployed]
    subscriptions: dict[str, str]
    workdir: Path


def install(service: str, workdir: Path) -> Deployed:
    """Unpack the zip into an empty folder and install its requirements into a fresh venv."""
    built = package_service(service, REPO, REGISTRY, workdir / "dist")
    folder = workdir / "deploy" / service
    folder.mkdir(parents=True)
    with zipfile.ZipFile(built.archive) as archive:
        archive.extractall(folder)
    venv = workdir / "venvs" / service
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [
            str(venv / "bin/python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            # what Cloud Functions' pip does with a hashed requirements.txt, said out loud: a
            # package or file the lock does not name fails the install
            "--require-hashes",
            "-r",
            str(folder / "requirements.txt"),
        ],
        check=True,
        timeout=900,
    )
    return Deployed(service, folder, venv / "bin" / "python")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    workdir = tmp_path_factory.mktemp("packaged")
    with ThreadPoolExecutor(max_workers=2) as pool:
        deployed = dict(
            zip(SERVICES, pool.map(lambda s: install(s, workdir), SERVICES), strict=True)
        )
    with pubsub_emulator(workdir) as pubsub, gcs_emulator(workdir) as gcs:
        env = {"PUBSUB_EMULATOR_HOST": pubsub, "STORAGE_EMULATOR_HOST": gcs}
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            from google.cloud import pubsub_v1, storage

            storage.Client(project=PROJECT).create_bucket(BUCKET)
            publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
            subscriptions = {}
            for topic in Topics().all():
                topic_path = publisher.topic_path(PROJECT, topic)
                publisher.create_topic(name=topic_path)
                sub = subscriber.subscription_path(PROJECT, f"{topic}-observer")
                subscriber.create_subscription(name=sub, topic=topic_path)
                subscriptions[topic] = sub
            yield World(pubsub, gcs, deployed, subscriptions, workdir)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def serve(
    world: World,
    service: str,
    target: str,
    signature: str = "cloudevent",
    extra_env: dict[str, str] | None = None,
) -> tuple[subprocess.Popen[bytes], int, Path]:
    deployed = world.deployed[service]
    port = free_port()
    log = world.workdir / f"{service}-{target}.log"
    env = {  # what Cloud Functions gives the function, plus the emulators; no PYTHONPATH
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/tmp"),
        "K_SERVICE": f"mlrelay-{service}",
        "MLRELAY_MODE": "google",
        "GOOGLE_CLOUD_PROJECT": PROJECT,
        "MLRELAY_BUCKET": BUCKET,
        "MLRELAY_REGISTRY": "registry/registry.yaml",
        "PUBSUB_EMULATOR_HOST": world.pubsub,
        "STORAGE_EMULATOR_HOST": world.gcs,
        **(extra_env or {}),
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                str(deployed.python),
                "-m",
                "functions_framework",
                "--target",
                target,
                "--signature-type",
                signature,
                "--source",
                "main.py",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            cwd=deployed.folder,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    wait_for_port(port, process, log, timeout=60)
    return process, port, log


def push(port: int, data: bytes, attributes: dict[str, str] | None = None) -> int:
    body = json.dumps(
        {
            "message": {
                "data": base64.b64encode(data).decode(),
                "attributes": attributes or {},
                "messageId": str(time.time_ns()),
                "publishTime": "2026-11-25T06:00:00Z",
            },
            "subscription": f"projects/{PROJECT}/subscriptions/test",
        }
    ).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/", data=body, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def pull(world: World, topic: str) -> list[Any]:
    from google.cloud import pubsub_v1

    subscriber = pubsub_v1.SubscriberClient()
    response = subscriber.pull(subscription=world.subscriptions[topic], max_messages=20, timeout=30)
    if response.received_messages:
        subscriber.acknowledge(
            subscription=world.subscriptions[topic],
            ack_ids=[m.ack_id for m in response.received_messages],
        )
    return list(response.received_messages)


def blob_names(prefix: str) -> list[str]:
    from google.cloud import storage

    client = storage.Client(project=PROJECT)
    return [b.name for b in client.list_blobs(BUCKET, prefix=prefix)]


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(timeout=20)


def test_packaged_trigger_accepts_a_run_and_publishes_the_snapshot_request(world: World) -> None:
    process, port, log = serve(world, "trigger", "on_run_request")
    try:
        request = RunRequest(pipeline="penguins", dedup_key="packaged")
        assert push(port, request.to_json(), request.attributes()) == 200, log.read_text()
    finally:
        stop(process)
    [snapshot] = pull(world, "mlrelay-snapshots")
    parsed = SnapshotRequest.model_validate(json.loads(snapshot.message.data))
    assert parsed.pipeline == "penguins"
    # the stage's record and its `published` marker (mlrelay.stage.echoes)
    assert blob_names(f"runs/{parsed.run_id}/") == [
        f"runs/{parsed.run_id}/trigger.json",
        f"runs/{parsed.run_id}/trigger.published",
    ]
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert any(line["message"] == "run_accepted" for line in lines)  # Cloud Logging JSON


@pytest.mark.parametrize(
    ("service", "target"),
    [("snapshotter", "on_snapshot_request"), ("deployer", "on_deploy_request")],
)
def test_packaged_stage_rejects_garbage_and_keeps_it(
    world: World, service: str, target: str
) -> None:
    process, port, log = serve(world, service, target)
    try:
        assert push(port, b'{"run_id": 7}') == 200, log.read_text()
    finally:
        stop(process)
    events = [
        LifecycleEvent.model_validate(json.loads(m.message.data))
        for m in pull(world, "mlrelay-lifecycle")
    ]
    rejected = [e for e in events if e.status == "rejected"]
    assert len(rejected) == 1 and "run_id" in (rejected[0].error or "")
    assert f"rejected/{rejected[0].run_id}.json" in blob_names("rejected/")


def test_packaged_notifier_posts_once_per_run_and_status(world: World) -> None:
    process, port, log = serve(world, "notifier", "on_lifecycle_event")
    event = LifecycleEvent(
        run_id="penguins-pkg-1",
        pipeline="penguins",
        stage="pipeline",
        status="succeeded",
        summary="pipeline penguins succeeded",
    )
    try:
        assert push(port, event.to_json(), event.attributes()) == 200, log.read_text()
        assert push(port, event.to_json(), event.attributes()) == 200, log.read_text()
    finally:
        stop(process)
    assert blob_names("notifications/penguins-pkg-1/") != []
    assert log.read_text().count("pipeline penguins succeeded") == 1


def post_form(port: int, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/", data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode()


def test_packaged_interactions_checks_signatures_and_the_allowlist(world: World) -> None:
    """The HTTP function from its package: unsigned is 401; a signed click by someone the
    shipped registry does not list is an ephemeral refusal; nothing reaches the commands topic."""
    from tests.helpers import button_body, seed_run, signed_headers, slash_body

    secret = "c3" * 16
    run_id = "penguins-pkg-click-1"
    from mlrelay.adapters.gcs_store import GcsStore

    seed_run(GcsStore(BUCKET, PROJECT), run_id)
    process, port, log = serve(
        world,
        "interactions",
        "on_slack_request",
        signature="http",
        extra_env={"SLACK_SIGNING_SECRET": secret},
    )
    try:
        click = button_body(run_id, "retry")
        status, _ = post_form(port, click, signed_headers("0" * 32, click))
        assert status == 401, log.read_text()
        status, text = post_form(port, click, signed_headers(secret, click))
        assert status == 200, log.read_text()
        assert json.loads(text)["response_type"] == "ephemeral"
        assert "may not act on `penguins`" in json.loads(text)["text"]
        usage = slash_body("help")
        status, text = post_form(port, usage, signed_headers(secret, usage))
        assert (status, "Usage:" in text) == (200, True), log.read_text()
    finally:
        stop(process)
    assert pull(world, "mlrelay-commands") == []
    assert secret not in log.read_text()
