"""Faults without an answer, on the cloud-shaped harness (tests/reliability/harness/): requests
to GCS, BigQuery, Vertex AI, a KFP host and Slack that hang past the client's timeout
(MLRELAY_HTTP_TIMEOUT_SECONDS, short here), connections dropped without a response, and answers
lost after the host did the work. Every message is delivered three times; the figures are
counted from real effects (manifests in the GCS emulator, jobs on the loopback Vertex AI or runs
on the loopback KFP host, top-level Slack messages), as in test_harness.py.

First, each client on its own against its loopback peer behind a FaultProxy (seconds); then the
whole system on the harness."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from mlrelay.errors import TransientError
from mlrelay.registry.backends import KfpOptions, VertexOptions
from mlrelay_deployer.kfp_backend import KfpHostBackend
from mlrelay_deployer.vertex_backend import VertexPipelineBackend
from mlrelay_notifier.chat import ChatRetries
from mlrelay_notifier.render import ChatMessage
from mlrelay_notifier.slack_clients import SlackBotChat
from tests.fakes.fault_proxy import DROP, HANG, LOSE, FaultProxy
from tests.fakes.kfp import FakeKfp
from tests.fakes.slack import FakeSlack
from tests.fakes.vertex import FakeVertex
from tests.helpers import PENGUINS_TEMPLATE
from tests.reliability.harness.cloud import Harness, cloud_harness
from tests.reliability.harness.runs import assert_exactly_once, finished, request_run, run_ids_of

SETTLE_SECONDS = int(os.environ.get("HARNESS_SETTLE_SECONDS", "240"))
TIMEOUT_SECONDS = 3  # each service's wait for one answer (MLRELAY_HTTP_TIMEOUT_SECONDS)
LEASE_SECONDS = 10  # a stage's claim lease (MLRELAY_CLAIM_LEASE_SECONDS), short for the tests
# a hung request is held this long, then dropped: a client without a timeout would wait it out
HANG_SECONDS = 30.0


LIFECYCLE = "projects/p/topics/mlrelay-lifecycle"
RUN_ID = "penguins-demo-1-0123456789ab"


@pytest.fixture
def proxied() -> Iterator[list[FaultProxy]]:
    started: list[FaultProxy] = []
    yield started
    for proxy in started:
        proxy.stop()


def proxy_to(url: str, started: list[FaultProxy]) -> FaultProxy:
    proxy = FaultProxy(url.removeprefix("http://").split("/")[0], hang_seconds=20.0).start()
    started.append(proxy)
    return proxy


def hung_up(proxy: FaultProxy, count: int) -> bool:
    """Whether `count` clients hung up on a HANG (the proxy sees it a moment after they do)."""
    deadline = time.monotonic() + 2
    while proxy.hung_up < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return proxy.hung_up == count


def deploy(backend: Any) -> Any:
    return backend.start(
        run_id=RUN_ID,
        pipeline="penguins",
        template=str(PENGUINS_TEMPLATE),
        parameters={"run_id": RUN_ID, "mlrelay_pipeline": "penguins"},
        labels={},
        announce=lambda links: None,
    )


def test_vertex_requests_time_out_and_are_retried_and_a_dead_host_asks_for_redelivery(
    proxied: list[FaultProxy],
) -> None:
    fake = FakeVertex().start()
    try:
        proxy = proxy_to(fake.endpoint, proxied)
        options = VertexOptions(project="test-proj", region="europe-west4")
        backend = VertexPipelineBackend(
            options, LIFECYCLE, endpoint=proxy.url, request_timeout_seconds=0.5,
            retry_deadline_seconds=4.0,
        )  # fmt: skip
        proxy.fail_next(HANG)
        proxy.fail_next(DROP)
        deploy(backend)
        assert len(fake.jobs) == 1 and hung_up(proxy, 1) and proxy.pending_faults() == 0
        proxy.failing = DROP
        began = time.monotonic()
        with pytest.raises(TransientError):
            deploy(backend)
        assert time.monotonic() - began < 10
    finally:
        fake.stop()


def test_a_kfp_create_whose_answer_was_lost_is_looked_up_not_made_again(
    proxied: list[FaultProxy],
) -> None:
    """The host made the pipeline, its version and the run, but each answer was lost: one of
    each, not a second run and not a 409 taken for a refusal."""
    fake = FakeKfp().start()
    try:
        proxy = proxy_to(fake.host, proxied)
        options = KfpOptions(host=proxy.url, pipeline_root="gs://b/root")
        backend = KfpHostBackend(
            options, LIFECYCLE, backoff_seconds=0.01, request_timeout_seconds=0.5
        )
        proxy.fail_next(LOSE, path="/pipelines/upload?", method="POST")
        proxy.fail_next(HANG, path="/runs", method="POST")  # times out, never reaches the host
        proxy.fail_next(LOSE, path="/runs", method="POST")
        outcome = deploy(backend)
        ours = [v for v in fake.versions.values() if v["display_name"].startswith("sha256-")]
        assert len(fake.pipelines) == len(ours) == len(fake.runs) == 1
        assert outcome.job_name == next(iter(fake.runs))
        assert proxy.pending_faults() == 0 and hung_up(proxy, 1)
    finally:
        fake.stop()


def test_a_kfp_host_that_stops_answering_asks_for_redelivery_within_the_timeouts(
    proxied: list[FaultProxy],
) -> None:
    fake = FakeKfp().start()
    try:
        proxy = proxy_to(fake.host, proxied)
        options = KfpOptions(host=proxy.url)
        backend = KfpHostBackend(
            options, LIFECYCLE, backoff_seconds=0.01, request_timeout_seconds=0.5
        )
        assert backend.client is not None  # connected (its health check has no timeout)
        proxy.failing = HANG
        began = time.monotonic()
        with pytest.raises(TransientError):
            deploy(backend)
        assert time.monotonic() - began < 10 and proxy.hung_up >= 1
    finally:
        fake.stop()


def test_a_slack_post_that_times_out_is_a_transient_failure(proxied: list[FaultProxy]) -> None:
    slack = FakeSlack(token="xoxb-test").start()
    try:
        slack.add_channel("#ml")
        proxy = proxy_to(slack.base, proxied)
        channel = SlackBotChat(
            "xoxb-test", api_url=proxy.url + "/api/", retries=ChatRetries(min_interval=0, timeout=1)
        )
        proxy.fail_next(HANG, path="/api/chat.postMessage")
        began = time.monotonic()
        with pytest.raises(TransientError):
            channel.send(ChatMessage("run x done", []), route="#ml")
        assert time.monotonic() - began < 5 and hung_up(proxy, 1) and not slack.messages
        channel.send(ChatMessage("run x done", []), route="#ml")
        assert len(slack.messages) == 1
    finally:
        slack.stop()


# class scope: each class's harness stops before the next class's starts
@pytest.fixture(scope="class")
def vertex_harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    yield from start_harness(tmp_path_factory, "vertex")


@pytest.fixture(scope="class")
def kfp_harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    yield from start_harness(tmp_path_factory, "kfp")


def start_harness(factory: pytest.TempPathFactory, backend: str) -> Iterator[Harness]:
    with cloud_harness(
        factory.mktemp(f"faults-{backend}"),
        pipelines=2,
        duplicates=3,
        max_attempts=30,  # Pub/Sub's 1-2 s backoff here: enough deliveries to outlast a lease
        env_overrides={
            "MLRELAY_HTTP_TIMEOUT_SECONDS": str(TIMEOUT_SECONDS),
            "MLRELAY_CLAIM_LEASE_SECONDS": str(LEASE_SECONDS),
        },
        backend=backend,
    ) as h:
        for proxy in h.hosts.values():
            proxy.hang_seconds = HANG_SECONDS
        yield h


def queue_on_every_host(harness: Harness, fault: int) -> None:
    """One `fault` on the request each host is sure to get in a run: an upload to GCS (the
    ledger's claims), a BigQuery job insert, the Vertex AI PipelineJob create, the Slack post."""
    harness.hosts["gcs"].fail_next(fault, method="POST")
    harness.hosts["bigquery"].fail_next(fault, path="/jobs", method="POST")
    harness.hosts["vertex"].fail_next(fault, path="/pipelineJobs", method="POST")
    harness.hosts["slack"].fail_next(fault, path="/api/chat.postMessage")


class TestOnVertexAi:
    @pytest.fixture
    def harness(self, vertex_harness: Harness) -> Harness:
        return vertex_harness

    @pytest.mark.parametrize("fault", [HANG, DROP], ids=["timeout", "dropped-connection"])
    def test_a_timeout_or_dropped_connection_from_every_host_gives_one_snapshot_job_and_post(
        self, harness: Harness, fault: int
    ) -> None:
        queue_on_every_host(harness, fault)
        requested = {request_run(harness, f"harness-{i}"): f"harness-{i}" for i in range(2)}
        harness.wait_until(lambda: finished(harness, requested), SETTLE_SECONDS, "both runs")
        assert_exactly_once(harness, requested)
        for name in ("gcs", "bigquery", "vertex", "slack"):
            host = harness.hosts[name]
            assert host.pending_faults() == 0 and host.requests[str(fault)] == 1, name
            if fault == HANG:  # the client gave up at its own timeout, not when the host did
                assert host.hung_up == 1, name

    def test_a_vertex_answer_lost_after_the_job_was_created_gives_still_one_job(
        self, harness: Harness
    ) -> None:
        """Vertex AI creates the job but the answer never arrives: the client's retry is refused
        with ALREADY_EXISTS (the job id is the run id), which the deployer takes as success."""
        vertex = harness.hosts["vertex"]
        vertex.fail_next(LOSE, path="/pipelineJobs", method="POST")
        requested = {request_run(harness, "harness-0"): "harness-0"}
        harness.wait_until(lambda: finished(harness, requested), SETTLE_SECONDS, "the run")
        assert_exactly_once(harness, requested)
        assert vertex.pending_faults() == 0 and vertex.requests[str(LOSE)] == 1

    def test_a_gcs_answer_lost_after_a_claim_was_written_is_recognised_and_loses_nothing(
        self, harness: Harness
    ) -> None:
        """The trigger's create-only claim is written but its answer lost: the client's retry
        is refused (412, the object exists); the ledger reads the claim back, recognises its own
        claim id and goes on (no waiting for a lease). One snapshot, job and post."""
        gcs = harness.hosts["gcs"]
        gcs.fail_next(LOSE, path="/upload/", method="POST")
        requested = {request_run(harness, "harness-1"): "harness-1"}
        harness.wait_until(lambda: finished(harness, requested), SETTLE_SECONDS, "the run")
        assert_exactly_once(harness, requested)
        assert gcs.pending_faults() == 0 and gcs.requests[str(LOSE)] == 1
        (run_id,) = run_ids_of(harness, requested)
        records = [harness.read_json(f"runs/{run_id}/{s}.json") for s in ("trigger", "snapshot")]
        # no claim was taken over (before, a lost create answer meant waiting a lease and a
        # takeover: attempts 2). Which of the three concurrent deliveries' creates loses its
        # answer is a race: the creator's (then the ledger logs `stage_claim_confirmed`) or a
        # refused one; tests/unit/stage/test_ledger.py covers the first case deterministically.
        assert [r["attempts"] for r in records] == [1, 1]

    def test_a_slack_answer_lost_after_the_post_gives_still_one_message(
        self, harness: Harness
    ) -> None:
        """Slack posts the run's message but the answer never arrives: the notifier does not
        post it again but finds it by its metadata key (conversations.history) and keeps its ts;
        one top-level message for the run, however often its events arrive."""
        slack = harness.hosts["slack"]
        slack.fail_next(LOSE, path="/api/chat.postMessage")
        requested = {request_run(harness, "harness-0"): "harness-0"}
        harness.wait_until(lambda: finished(harness, requested), SETTLE_SECONDS, "the run")
        assert_exactly_once(harness, requested)
        assert slack.pending_faults() == 0 and slack.requests[str(LOSE)] == 1
        assert "slack_post_found" in harness.logs()


class TestOnAKfpHost:
    @pytest.fixture
    def harness(self, kfp_harness: Harness) -> Harness:
        return kfp_harness

    def test_faults_on_the_kfp_host_give_one_pipeline_run_per_run_and_lose_none(
        self, harness: Harness
    ) -> None:
        """Every message three times; the KFP host answers 503, hangs past the timeout, drops
        connections, and loses the answers of an upload and of the run's create after doing
        them: one KFP run per run id, each completed by the shipped exit-handler reporter."""
        kfp = harness.hosts["kfp"]
        kfp.fail_next(LOSE, path="/pipelines/upload?", method="POST")  # the pipeline's upload
        kfp.fail_next(HANG, path="/pipelines", method="GET")
        kfp.fail_next(DROP, path="/experiments", method="POST")
        kfp.fail_next(503, path="/runs", method="POST")
        kfp.fail_next(HANG, path="/runs", method="POST")
        kfp.fail_next(LOSE, path="/runs", method="POST")
        requested = {request_run(harness, f"harness-{i}"): f"harness-{i}" for i in range(2)}
        harness.wait_until(lambda: finished(harness, requested), SETTLE_SECONDS, "both runs")
        assert_exactly_once(harness, requested)
        assert harness.kfp is not None and len(harness.kfp.runs) == 2
        assert kfp.pending_faults() == 0 and kfp.hung_up == 2
        assert {kfp.requests[str(f)] for f in (LOSE, HANG)} == {2}
