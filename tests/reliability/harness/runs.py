"""Publishing runs into the harness and checking their exactly-once figures."""

from __future__ import annotations

import uuid

from mlrelay.contracts import RunRequest

from .cloud import BUCKET, Harness
from .figures import count_figures


def request_run(harness: Harness, pipeline: str, **parameters: object) -> str:
    key = uuid.uuid4().hex[:10]
    request = RunRequest(pipeline=pipeline, dedup_key=key, parameters=parameters)  # type: ignore[arg-type]
    harness.publish(harness.topics.runs, request.to_json(), request.attributes())
    return key


def finished(harness: Harness, requested: dict[str, str]) -> bool:
    return not count_figures(harness, requested).lost


def run_ids_of(harness: Harness, requested: dict[str, str]) -> set[str]:
    return {
        e.run_id
        for e in harness.events()
        if e.event_type == "trigger.accepted"
        and any(e.run_id.startswith(f"{p}-{k}-") for k, p in requested.items())
    }


def assert_exactly_once(harness: Harness, requested: dict[str, str]) -> None:
    harness.wait_quiet()
    figures = count_figures(harness, requested)
    run_ids = run_ids_of(harness, requested)
    assert len(run_ids) == len(requested), run_ids
    assert figures.lost == []
    for run_id in run_ids:
        story = [(e.event_type, e.error) for e in harness.events() if e.run_id == run_id]
        assert figures.snapshots[run_id] == 1, story
        assert figures.jobs[run_id] == 1, run_id
        assert figures.posts[run_id] == 1, run_id
        final = [e for e in harness.events() if e.run_id == run_id and e.status == "succeeded"]
        assert final, run_id


def read_blob(harness: Harness, name: str) -> bytes:
    return bytes(harness.storage().bucket(BUCKET).blob(name).download_as_bytes())
