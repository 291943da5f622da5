"""A burst of run requests through the harness, with transient faults, counted afterwards."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from mlrelay.contracts import RunRequest

from .cloud import Harness
from .figures import Figures, count_figures


@dataclass
class LoadResult:
    figures: Figures
    run_ids: set[str]
    seconds: float


def burst(
    harness: Harness,
    runs: int,
    pipelines: int,
    *,
    settle_seconds: float,
    quiet_timeout: float = 120.0,
) -> LoadResult:
    """Publish `runs` requests round-robin over `pipelines` at once (the official publisher
    client, 8 threads), with a few transient faults queued on every peer, and wait until every
    run has its final outcome and the deliveries have stopped."""
    harness.gcs.fail_next(503, 5, method="POST")
    harness.bigquery.fail_next(503, 3, path="/jobs")
    harness.vertex.fail_next(503, "backend unavailable", times=3)
    harness.slack.queue(500, "oops", times=2, path_prefix="/api/chat.postMessage")
    tag = uuid.uuid4().hex[:6]
    requested = {f"{tag}-{i:04d}": f"harness-{i % pipelines}" for i in range(runs)}
    publisher = harness.publisher()
    topic = publisher.topic_path("mlrelay-harness", harness.topics.runs)
    started = time.monotonic()

    def publish(key: str) -> str:
        request = RunRequest(pipeline=requested[key], dedup_key=key)
        return str(publisher.publish(topic, request.to_json(), **request.attributes()).result())

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(publish, requested))
    harness.wait_until(
        lambda: not count_figures(harness, requested).lost, settle_seconds, f"{runs} runs"
    )
    harness.wait_quiet(timeout=quiet_timeout)  # the duplicates' echoes die down too
    seconds = time.monotonic() - started
    run_ids = {
        e.run_id
        for e in harness.events()
        if e.event_type == "trigger.accepted"
        and any(e.run_id.startswith(f"{p}-{k}-") for k, p in requested.items())
    }
    return LoadResult(count_figures(harness, requested), run_ids, seconds)
