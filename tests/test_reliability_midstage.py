"""A service process killed in the middle of a stage, on the cloud-shaped harness.

The snapshotter is SIGKILLed while its claim on the run's snapshot stage is held and its BigQuery
call is in flight (the BigQuery proxy holds every request until the test lets go). The claim's
lease (MLRELAY_CLAIM_LEASE_SECONDS, renewed while a worker lives) then runs out, a redelivery
takes the claim over in the restarted process, re-attaches to the BigQuery job the dead process
started (deterministic job ids) and the run completes with one snapshot, one job, one post."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator

import pytest

from .harness.cloud import Harness, cloud_harness
from .harness.runs import assert_exactly_once, request_run

pytestmark = pytest.mark.integration
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


def test_a_snapshotter_killed_mid_stage_is_taken_over_after_one_lease(harness: Harness) -> None:
    bigquery = harness.bigquery
    bigquery.forwarding.acquire()  # every BigQuery call now waits in the proxy
    try:
        requested = {request_run(harness, "harness-0"): "harness-0"}
        harness.wait_until(
            lambda: running_claim(harness, "snapshot") is not None, SETTLE_SECONDS, "the claim"
        )
        claim = running_claim(harness, "snapshot")
        assert claim is not None
        time.sleep(LEASE_SECONDS)  # long enough for the live worker to renew its lease
        renewed = running_claim(harness, "snapshot")
        assert renewed is not None and renewed["claim_id"] == claim["claim_id"]
        assert str(renewed["lease_until"]) > str(claim["lease_until"])  # the heartbeat
        harness.kill_service("mlrelay-snapshotter")
        killed_at = time.monotonic()
        harness.start_service("mlrelay-snapshotter")
    finally:
        bigquery.forwarding.release()  # the dead process's request reaches BigQuery now
    harness.wait_until(lambda: bool(snapshot_records(harness)), SETTLE_SECONDS, "the snapshot")
    recovered_in = time.monotonic() - killed_at
    assert_exactly_once(harness, requested)
    (record,) = snapshot_records(harness)
    assert record["state"] == "done"
    assert record["attempts"] == 2  # taken over from the dead worker, not started afresh
    assert recovered_in < 120, recovered_in  # one short lease, not a stage-long one
    logs = harness.services["mlrelay-snapshotter"].log.read_text()
    assert "stage_claim_taken_over" in logs
    taken_over = [
        json.loads(line) for line in logs.splitlines() if "stage_claim_taken_over" in line
    ]
    assert all(line["logging.googleapis.com/labels"]["run_id"] for line in taken_over)


def snapshot_records(harness: Harness) -> list[dict[str, object]]:
    records = []
    for name in harness.blobs("runs/"):
        if name.endswith("/snapshot.json"):
            record = harness.read_json(name)
            if record["state"] == "done":
                records.append(record)
    return records
