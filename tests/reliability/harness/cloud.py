"""The cloud-shaped harness: peers, services, push subscriptions, and counting of real effects.

Topology (mirrors infra/: one push subscription per function, with a dead-letter policy):

    publisher client -> Pub/Sub emulator topic -> push subscription(s) -> FaultProxy ->
    functions-framework process (`--source services/<s>/main.py`, google mode) -> GCS emulator /
    BigQuery emulator / loopback Vertex AI or KFP host / loopback Slack (each behind a FaultProxy)

`duplicates=3` gives every function three push subscriptions on its topic, so every message is
delivered three times (with the same message id), concurrently, as at-least-once allows.
Completion of a pipeline job is played by calling the shipped exit-handler component
(`mlrelay.kfp_components.completion`) for each job the loopback Vertex AI (or, with
`backend="kfp"`, the loopback KFP host, tests/fakes/kfp.py) created. With `ending` set, a Vertex
job may instead end without its reporter (failed at start, cancelled, a task killed): the
loopback Vertex AI records that end and writes the LogEntry Cloud Logging would, which the
harness publishes to the `pipeline_job_events` topic through the emulator, as the log sink does;
or the reporter and the log entry both come, one after the other has settled the run.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from mlrelay.config.functions import FUNCTIONS
from mlrelay.config.topics import Topics
from mlrelay.contracts import LifecycleEvent
from tests.fakes.fault_proxy import FaultProxy
from tests.fakes.kfp import FakeKfp
from tests.fakes.slack import FakeSlack
from tests.fakes.vertex import FakeVertex
from tests.helpers import REPO
from tests.integration.peers import (
    bigquery_emulator,
    free_port,
    gcs_emulator,
    pubsub_emulator,
    wait_for_port,
)

PROJECT = "mlrelay-harness"
BUCKET = "mlrelay-harness-bucket"
CHANNEL = "#ml-harness"
REPORTER = "reporter"  # the exit handler reports the job's success
RELAY_THEN_REPORTER = "relay_then_reporter"  # a task fails: the log entry, then the reporter
REPORTER_THEN_RELAY = "reporter_then_relay"  # a task fails: the reporter, then the log entry
SLACK_TOKEN = "harness-secret-bot-token-5f1c"
SEED = """
CREATE OR REPLACE TABLE demo.penguins AS
SELECT 'Adelie' AS species, 'Torgersen' AS island, 39.1 AS bill_length_mm, 2007 AS year
UNION ALL SELECT 'Gentoo', 'Biscoe', 46.1, 2008
UNION ALL SELECT 'Chinstrap', 'Dream', 46.5, 2009
UNION ALL SELECT 'Adelie', 'Dream', 37.2, 2009
"""


def registry_yaml(pipelines: int, kfp_host: str = "") -> str:
    """`pipelines` entries on Vertex AI, or on the KFP host `kfp_host` when it is given."""
    lines = ["version: 1", "pipelines:"]
    host = [
        "    backend: vertex",
        "    vertex:",
        f"      project: {PROJECT}",
        "      region: europe-west4",
        "      pipeline_root: gs://mlrelay-harness-root/root",
    ]
    if kfp_host:
        host = [
            "    backend: kfp",
            "    kfp:",
            f"      host: {kfp_host}",
            "      pipeline_root: gs://mlrelay-harness-root/kfp-root",
        ]
    for i in range(pipelines):
        lines += [
            f"  harness-{i}:",
            "    source:",
            "      sql: >-",
            "        SELECT species, island, bill_length_mm, year FROM `demo.penguins`",
            "        WHERE year >= @min_year AND island != @skip_island",
            "      query_parameters: [min_year, skip_island]",
            f"    snapshot_dataset: harness_{i}",
            "    template: penguins_pipeline.yaml",
            *host,
            "    parameters: {min_year: 2007, test_fraction: 0.25, n_estimators: 10,"
            " max_depth: 3, seed: 42, skip_island: none}",
            "    overridable: [min_year, seed, skip_island]",
            "    notify:",
            f'      slack_channel: "{CHANNEL}"',
            "      on_success: always",
        ]
    return "\n".join(lines) + "\n"


@dataclass
class Service:
    function: str  # the Cloud Function name (FUNCTIONS)
    target: str
    source: Path
    proxy: FaultProxy
    log: Path
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0


@dataclass
class Harness:
    workdir: Path
    pubsub: str
    gcs: FaultProxy
    bigquery: FaultProxy
    vertex: FakeVertex
    slack: FakeSlack
    env: dict[str, str]
    services: dict[str, Service] = field(default_factory=dict)
    topics: Topics = field(default_factory=Topics)
    observed: dict[str, str] = field(default_factory=dict)  # topic -> observer subscription
    seen: dict[str, list[Any]] = field(default_factory=dict)  # topic -> messages observed
    completed_jobs: set[str] = field(default_factory=set)
    complete_jobs: bool = True
    lock: threading.Lock = field(default_factory=threading.Lock)
    # every outside host the services call, each behind its own FaultProxy: gcs, bigquery,
    # vertex, slack, and kfp when the pipelines run on the loopback KFP host (`kfp`)
    hosts: dict[str, FaultProxy] = field(default_factory=dict)
    kfp: FakeKfp | None = None
    # how each new job ends (its pipeline parameters -> REPORTER, a FakeVertex ending, or
    # RELAY_THEN_REPORTER / REPORTER_THEN_RELAY); None: the reporter says it succeeded
    ending: Callable[[dict[str, Any]], str] | None = None
    # (job name, its parameters, what is still to come) once the run is settled
    deferred: list[tuple[str, dict[str, Any], str]] = field(default_factory=list)

    # --- clients ----------------------------------------------------------------------------
    def publisher(self) -> Any:
        from google.cloud import pubsub_v1

        return pubsub_v1.PublisherClient()

    def publish(self, topic: str, data: bytes, attributes: dict[str, str]) -> str:
        path = f"projects/{PROJECT}/topics/{topic}"
        return str(self.publisher().publish(path, data, **attributes).result(timeout=30))

    def storage(self) -> Any:
        from google.cloud import storage

        return storage.Client(project=PROJECT)

    def blobs(self, prefix: str) -> list[str]:
        return [b.name for b in self.storage().list_blobs(BUCKET, prefix=prefix)]

    def read_json(self, key: str) -> Any:
        return json.loads(self.storage().bucket(BUCKET).blob(key).download_as_bytes())

    # --- services ---------------------------------------------------------------------------
    def start_service(self, name: str) -> None:
        service = self.services[name]
        port = free_port()
        env = {**self.env, "K_SERVICE": service.function}
        with service.log.open("ab") as out:
            service.process = subprocess.Popen(
                [
                    *(sys.executable, "-m", "functions_framework", "--target", service.target),
                    *("--source", str(service.source), "--signature-type", "cloudevent"),
                    *("--host", "127.0.0.1", "--port", str(port)),
                ],
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: the server and its workers
            )
        wait_for_port(port, service.process, service.log, timeout=90)
        service.proxy.upstream = f"127.0.0.1:{port}"
        service.starts += 1

    def kill_service(self, name: str) -> None:
        process = self.services[name].process
        assert process is not None
        os.killpg(process.pid, signal.SIGKILL)  # no clean-up, as when an instance dies
        process.wait(timeout=20)

    def logs(self) -> str:
        return "\n".join(s.log.read_text(errors="replace") for s in self.services.values())

    # --- observing --------------------------------------------------------------------------
    def drain(self) -> None:
        """Pull everything the observer subscriptions hold into `seen`."""
        from google.cloud import pubsub_v1

        subscriber = pubsub_v1.SubscriberClient()
        warnings.filterwarnings("ignore", "The return_immediately flag", DeprecationWarning)
        for topic, sub in self.observed.items():
            while True:
                response = subscriber.pull(
                    request={"subscription": sub, "max_messages": 500, "return_immediately": True},
                    timeout=10,
                )
                if not response.received_messages:
                    break
                subscriber.acknowledge(
                    subscription=sub, ack_ids=[m.ack_id for m in response.received_messages]
                )
                with self.lock:
                    self.seen.setdefault(topic, []).extend(
                        m.message for m in response.received_messages
                    )

    def events(self) -> list[LifecycleEvent]:
        with self.lock:
            raw = list(self.seen.get(self.topics.lifecycle, []))
        events = []
        for message in raw:
            try:
                events.append(LifecycleEvent.model_validate_json(message.data))
            except ValueError:  # a poison message the test put on the lifecycle topic
                continue
        return events

    def published(self, topic: str) -> list[Any]:
        with self.lock:
            return list(self.seen.get(topic, []))

    def pipeline_jobs(self) -> dict[str, dict[str, Any]]:
        """Job name -> the run's pipeline parameters, of every job the pipeline host created
        (the loopback Vertex AI, or the loopback KFP host in a `kfp` harness)."""
        if self.kfp is not None:
            with self.kfp.lock:
                runs = dict(self.kfp.runs)
            return {name: dict(run["runtime_config"]["parameters"]) for name, run in runs.items()}
        with self.vertex.lock:
            jobs = dict(self.vertex.jobs)
        return {  # a job made by hand (no runtimeConfig) is no run of mlrelay's
            name: dict(job["runtimeConfig"]["parameterValues"])
            for name, job in jobs.items()
            if "runtimeConfig" in job
        }

    def report(self, name: str, values: dict[str, Any], state: str) -> None:
        """The job's exit handler: the shipped reporter publishes its outcome."""
        from mlrelay.kfp_components.completion import report_pipeline_completion

        error = "" if state == "SUCCEEDED" else (
            "The DAG failed because some tasks failed. The failed tasks are: [train]."
        )  # fmt: skip
        status = SimpleNamespace(state=state, error_message=error, pipeline_job_resource_name=name)
        report_pipeline_completion(
            status=status,
            run_id=values["run_id"],
            pipeline=values["mlrelay_pipeline"],
            destination=values["mlrelay_lifecycle_destination"],
        )

    def settled(self, values: dict[str, Any]) -> bool:
        """The notifier has the run's final state (its history summary)."""
        key = f"history/{values['mlrelay_pipeline']}/{values['run_id']}.json"
        return bool(self.storage().bucket(BUCKET).blob(key).exists())

    def complete_new_jobs(self) -> None:
        """End each new job as `ending` says (by default its reporter says it succeeded), and
        play what comes after a settled run (the second of reporter and log entry)."""
        for name, values, then in list(self.deferred):
            if self.settled(values):
                self.deferred.remove((name, values, then))
                if then == REPORTER:
                    self.report(name, values, "FAILED")
                else:
                    self.vertex.end_job(name, "task_killed")
        for name, values in self.pipeline_jobs().items():
            if name in self.completed_jobs or not self.complete_jobs:
                continue
            how = self.ending(values) if self.ending is not None else REPORTER
            if how == REPORTER:
                self.report(name, values, "SUCCEEDED")
                if self.ending is not None:  # Cloud Logging records the success too
                    self.vertex.end_job(name, "succeeded")
            elif how == RELAY_THEN_REPORTER:
                self.vertex.end_job(name, "task_killed")
                self.deferred.append((name, values, REPORTER))
            elif how == REPORTER_THEN_RELAY:
                self.report(name, values, "FAILED")
                self.deferred.append((name, values, "relay"))
            else:  # the job dies silently: only Cloud Logging hears of it
                self.vertex.end_job(name, how)  # type: ignore[arg-type]
            self.completed_jobs.add(name)

    def wait_until(self, done: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.complete_new_jobs()
            self.drain()
            if done():
                return
            time.sleep(0.5)
        self.drain()
        pushes = {n: dict(s.proxy.requests) for n, s in self.services.items()}
        raise AssertionError(f"timed out after {timeout}s waiting for {what}; pushes: {pushes}")

    def wait_quiet(self, seconds: float = 4.0, timeout: float = 120.0) -> None:
        """Wait until no push has reached any function for `seconds` (redeliveries included)."""
        deadline = time.monotonic() + timeout
        last, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            self.complete_new_jobs()
            total = sum(s.proxy.total() for s in self.services.values())
            if total != last:
                last, since = total, time.monotonic()
            elif time.monotonic() - since >= seconds:
                self.drain()
                return
            time.sleep(0.5)
        raise AssertionError(f"deliveries did not stop within {timeout}s")

    def run_ids_with(self, event_type: str) -> set[str]:
        return {e.run_id for e in self.events() if e.event_type == event_type}


def _subscriptions(harness: Harness, duplicates: int, max_attempts: int) -> dict[str, str]:
    """Topics, push subscriptions (with dead-letter policy) and observer pull subscriptions."""
    from google.cloud import pubsub_v1
    from google.protobuf import duration_pb2

    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    topics = harness.topics
    for topic in topics.all():
        publisher.create_topic(name=publisher.topic_path(PROJECT, topic))
        observer = subscriber.subscription_path(PROJECT, f"{topic}-observer")
        subscriber.create_subscription(name=observer, topic=publisher.topic_path(PROJECT, topic))
        harness.observed[topic] = observer
    by_subscription: dict[str, str] = {}
    dead_letter_topic = publisher.topic_path(PROJECT, topics.dead_letter)
    for spec in FUNCTIONS:
        topic = getattr(topics, spec.topic)
        copies = 1 if not spec.dead_letters_to_topic else duplicates
        for copy in range(copies):
            name = spec.name if copy == 0 else f"{spec.name}-dup{copy}"
            by_subscription[name] = topic
            request: dict[str, Any] = {
                "name": subscriber.subscription_path(PROJECT, name),
                "topic": publisher.topic_path(PROJECT, topic),
                "push_config": {"push_endpoint": harness.services[spec.name].proxy.url + "/"},
                "ack_deadline_seconds": 120,
                "retry_policy": {
                    "minimum_backoff": duration_pb2.Duration(seconds=1),
                    "maximum_backoff": duration_pb2.Duration(seconds=2),
                },
            }
            if spec.only is not None:
                request["filter"] = spec.only.expression()
            if spec.dead_letters_to_topic:
                request["dead_letter_policy"] = {
                    "dead_letter_topic": dead_letter_topic,
                    "max_delivery_attempts": max_attempts,
                }
            subscriber.create_subscription(request=request)
    return by_subscription


@contextmanager
def cloud_harness(
    workdir: Path,
    *,
    pipelines: int = 2,
    duplicates: int = 1,
    max_attempts: int = 5,
    env_overrides: dict[str, str] | None = None,
    backend: str = "vertex",  # or "kfp": the pipelines run on the loopback KFP host
    extra_registry: str = "",  # appended to the registry (a `groups:` section, say)
) -> Iterator[Harness]:
    with ExitStack() as stack:
        pubsub = stack.enter_context(pubsub_emulator(workdir))
        gcs_url = stack.enter_context(gcs_emulator(workdir))
        gcs = FaultProxy(gcs_url.removeprefix("http://"), "gcs").start()
        stack.callback(gcs.stop)
        bq_peer = stack.enter_context(bigquery_emulator(workdir, gcs_url, PROJECT))
        bigquery = FaultProxy(bq_peer.endpoint.removeprefix("http://"), "bigquery", serial=True)
        bigquery.start()
        stack.callback(bigquery.stop)
        vertex = FakeVertex().start()
        stack.callback(vertex.stop)
        slack = FakeSlack(token=SLACK_TOKEN).start()
        stack.callback(slack.stop)
        slack.add_channel(CHANNEL)
        hosts = {"gcs": gcs, "bigquery": bigquery}
        for name, url in (("vertex", vertex.endpoint), ("slack", slack.base)):
            hosts[name] = FaultProxy(url.removeprefix("http://"), name).start()
            stack.callback(hosts[name].stop)
        kfp: FakeKfp | None = None
        if backend == "kfp":
            kfp = FakeKfp().start()
            stack.callback(kfp.stop)
            hosts["kfp"] = FaultProxy(kfp.host.removeprefix("http://"), "kfp").start()
            stack.callback(hosts["kfp"].stop)

        saved = {k: os.environ.get(k) for k in ("PUBSUB_EMULATOR_HOST", "STORAGE_EMULATOR_HOST")}
        os.environ.update({"PUBSUB_EMULATOR_HOST": pubsub, "STORAGE_EMULATOR_HOST": gcs_url})
        stack.callback(_restore, saved)

        from google.cloud import storage

        storage.Client(project=PROJECT).create_bucket(BUCKET)
        _seed_bigquery(bq_peer.endpoint)
        shutil.copy(REPO / "pipelines/penguins/penguins_pipeline.yaml", workdir)
        kfp_host = hosts["kfp"].url if "kfp" in hosts else ""
        (workdir / "registry.yaml").write_text(registry_yaml(pipelines, kfp_host) + extra_registry)

        env = {
            "PATH": os.environ["PATH"],
            "HOME": os.environ.get("HOME", "/tmp"),
            "MLRELAY_MODE": "google",
            "GOOGLE_CLOUD_PROJECT": PROJECT,
            "MLRELAY_BUCKET": BUCKET,
            "MLRELAY_REGISTRY": str(workdir / "registry.yaml"),
            "MLRELAY_LOG_FORMAT": "json",
            "PUBSUB_EMULATOR_HOST": pubsub,
            "STORAGE_EMULATOR_HOST": gcs.url,
            "MLRELAY_BIGQUERY_ENDPOINT": bigquery.url,
            "MLRELAY_BIGQUERY_STORAGE_ENDPOINT": bq_peer.storage_endpoint,
            "MLRELAY_BIGQUERY_JOB_WAIT_SECONDS": "60",
            "MLRELAY_BIGQUERY_RETRY_SECONDS": "20",
            "SLACK_BOT_TOKEN": SLACK_TOKEN,
            "MLRELAY_SLACK_API_URL": hosts["slack"].url + "/api/",
            "MLRELAY_SLACK_CHANNEL": CHANNEL,
            "MLRELAY_SLACK_MIN_INTERVAL": "0",
            "MLRELAY_VERTEX_ENDPOINT": hosts["vertex"].url,
            **(env_overrides or {}),
        }
        harness = Harness(workdir, pubsub, gcs, bigquery, vertex, slack, env, hosts=hosts, kfp=kfp)

        def log_sink(data: bytes, attributes: dict[str, str]) -> None:  # as the log sink does
            harness.publish(harness.topics.pipeline_job_events, data, attributes)

        vertex.log_sink = log_sink
        for spec in FUNCTIONS:
            source = REPO / "services" / spec.service_dir / "main.py"
            proxy = FaultProxy("127.0.0.1:1", spec.name).start()
            stack.callback(proxy.stop)
            log = workdir / f"{spec.name}.log"
            harness.services[spec.name] = Service(spec.name, spec.entry_point, source, proxy, log)
        by_subscription = _subscriptions(harness, duplicates, max_attempts)
        # the duplicate subscriptions are not named after a function: say which topic they read
        harness.env["MLRELAY_SUBSCRIPTION_TOPICS"] = json.dumps(by_subscription)
        for name in harness.services:
            stack.callback(_stop_service, harness.services[name])
        threads = [
            threading.Thread(target=harness.start_service, args=(name,))
            for name in harness.services
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for name, service in harness.services.items():
            if service.starts == 0:
                raise RuntimeError(f"{name} did not start: {service.log.read_text()[-2000:]}")
        yield harness


def _stop_service(service: Service) -> None:
    if service.process is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(service.process.pid, signal.SIGTERM)
    try:
        service.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(service.process.pid, signal.SIGKILL)
        service.process.wait(timeout=10)


def _restore(saved: dict[str, str | None]) -> None:
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _seed_bigquery(endpoint: str) -> None:
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    client = bigquery.Client(
        project=PROJECT,
        credentials=AnonymousCredentials(),
        client_options=ClientOptions(api_endpoint=endpoint),
    )
    client.create_dataset("demo", exists_ok=True)
    client.query(SEED).result()
