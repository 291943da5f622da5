"""A service process killed in the middle of a stage, on the cloud-shaped harness.

The snapshotter (or the deployer) is SIGKILLed while it holds the claim on its stage and its call
to BigQuery (or Vertex AI) is in flight: the host's proxy holds every request until the test lets
go. The claim's lease (MLRELAY_CLAIM_LEASE_SECONDS, renewed while a worker lives) then runs out, a
redelivery takes the claim over in the restarted process and finds the work the dead process
started: the BigQuery job by its deterministic id (re-attached), the Vertex AI job by its id, the
run id (ALREADY_EXISTS is success). The run completes with one snapshot, one job, one post."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator

import pytest

from tests.reliability.harness.cloud import Harness, cloud_harness
from tests.reliability.harness.runs import assert_exactly_once, request_run, run_ids_of

SETTLE_SECONDS = int(os.environ.get("HARNESS_SETTLE_SECONDS", "240"))
LEASE_SECONDS = 4


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    with cloud_harness(
        tmp_path_factory.mktemp("midstage"),
        pipelines=1,
        duplicates=1,
        # the killed push, the pushes refused while the process restarts and those answered
        # "claim held" until the lease runs out all count as deliveries
        max_attempts=10,
        env_overrides={"MLRELAY_CLAIM_LEASE_SECONDS": str(LEASE_SECONDS)},
    ) as h:
        yield h


def running_claim(harness: Harness, stage: str) -> dict[str, object] | None:
    for name in harness.blobs("runs/"):
        if name.endswith(f"/{stage}.json"):
            record: dict[str, object] = harness.read_json(name)
            if record["state"] == "running":
                return record
    return None


@pytest.mark.parametrize(
    ("service", "host", "stage"),
    [("mlrelay-snapshotter", "bigquery", "snapshot"), ("mlrelay-deployer", "vertex", "pipeline")],
)
def test_a_process_killed_mid_stage_is_taken_over_after_one_lease(
    harness: Harness, service: str, host: str, stage: str
) -> None:
    proxy = harness.hosts[host]
    proxy.serial = True  # requests pass one at a time, under `forwarding`
    proxy.forwarding.acquire()  # every call to the host now waits in the proxy
    try:
        requested = {request_run(harness, "harness-0"): "harness-0"}
        harness.wait_until(
            lambda: running_claim(harness, stage) is not None, SETTLE_SECONDS, "the claim"
        )
        claim = running_claim(harness, stage)
        assert claim is not None
        time.sleep(LEASE_SECONDS)  # long enough for the live worker to renew its lease
        renewed = running_claim(harness, stage)
        assert renewed is not None and renewed["claim_id"] == claim["claim_id"]
        assert str(renewed["lease_until"]) > str(claim["lease_until"])  # the heartbeat
        log_before = harness.services[service].log.stat().st_size
        harness.kill_service(service)
        killed_at = time.monotonic()
        harness.start_service(service)
    finally:
        proxy.forwarding.release()  # the dead process's request reaches the host now
    (run_id,) = run_ids_of(harness, requested)
    harness.wait_until(
        lambda: done_record(harness, run_id, stage) is not None, SETTLE_SECONDS, f"the {stage}"
    )
    recovered_in = time.monotonic() - killed_at
    assert_exactly_once(harness, requested)  # one snapshot, one pipeline job, one Slack post
    record = done_record(harness, run_id, stage)
    assert record is not None
    assert record["attempts"] == 2  # taken over from the dead worker, not started afresh
    assert recovered_in < 120, recovered_in  # one short lease, not a stage-long one
    with harness.services[service].log.open() as log:
        log.seek(log_before)
        taken_over = [json.loads(line) for line in log if "stage_claim_taken_over" in line]
    assert taken_over, "the restarted process did not take the claim over"
    assert all(line["logging.googleapis.com/labels"]["run_id"] == run_id for line in taken_over)


def done_record(harness: Harness, run_id: str, stage: str) -> dict[str, object] | None:
    names = harness.blobs(f"runs/{run_id}/{stage}.json")
    record: dict[str, object] | None = harness.read_json(names[0]) if names else None
    return record if record is not None and record["state"] == "done" else None
