"""Backfill planning and its concurrency bound on the Google path (publish, then wait for the
ledger), with the local folder store standing in for the bucket."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from mlrelay.adapters.local_folder import LocalFolderStore
from mlrelay.errors import PermanentError
from mlrelay.registry import parse_registry
from mlrelay.stage import keys
from mlrelay.stage.ledger import StageRecord
from mlrelay_tools.schedules.backfill import backfill_items, publish_windowed, run_finished
from tests.helpers import PENGUINS_TEMPLATE

REGISTRY = parse_registry(
    f"""
pipelines:
  churn:
    source: {{table: events}}
    template: {PENGUINS_TEMPLATE}
    parameters: {{service: all}}
    overridable: [service]
    schedules:
      - name: daily
        cron: "30 2 * * *"
        time_zone: Europe/Amsterdam
        fan_out: {{a: {{service: a}}, b: {{service: b}}}}
      - name: weekly
        cron: "0 5 * * 1"
        time_zone: UTC
"""
)


def test_backfill_items_cover_every_slot_with_the_ids_the_ticks_would_have_had() -> None:
    items = backfill_items(
        REGISTRY,
        "churn",
        datetime(2026, 3, 28, tzinfo=UTC),
        datetime(2026, 3, 31, tzinfo=UTC),
        schedule_name="daily",
    )
    slots = [i.request.logical_time for i in items]
    # 29 March: 02:30 does not exist in Amsterdam; the slot is the end of the gap (03:00 CEST)
    assert [s.isoformat() if s else None for s in slots] == [
        "2026-03-28T01:30:00+00:00",
        "2026-03-29T01:00:00+00:00",
        "2026-03-30T00:30:00+00:00",
    ]
    assert all(len(i.run_ids) == 2 for i in items)  # one per fan-out member
    assert all(i.request.trigger == "backfill" for i in items)
    assert len({rid for i in items for rid in i.run_ids}) == 6


@pytest.mark.parametrize(
    ("start", "end", "schedule", "words"),
    [
        ((2026, 3, 2), (2026, 3, 1), None, "--to: is before --from"),
        ((2026, 3, 1), (2026, 3, 2), "hourly", "has no a schedule named 'hourly'"),
    ],
)
def test_a_backfill_that_cannot_be_planned_says_why(
    start: tuple[int, int, int], end: tuple[int, int, int], schedule: str | None, words: str
) -> None:
    with pytest.raises(PermanentError) as caught:
        backfill_items(
            REGISTRY,
            "churn",
            datetime(*start, tzinfo=UTC),
            datetime(*end, tzinfo=UTC),
            schedule_name=schedule,
        )
    assert words in str(caught.value)


class RecordingPublisher:
    def __init__(self) -> None:
        self.published: list[bytes] = []

    def publish(self, topic: str, data: bytes, attributes: dict[str, str]) -> str:
        self.published.append(data)
        return f"m-{len(self.published)}"


def test_a_windowed_backfill_never_has_more_runs_in_flight_than_its_concurrency(
    tmp_path: Path,
) -> None:
    store = LocalFolderStore(tmp_path / "bucket")
    items = backfill_items(
        REGISTRY,
        "churn",
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(2026, 3, 1, tzinfo=UTC),
        schedule_name="weekly",
    )
    assert len(items) == 8  # the Mondays of January and February
    done_before = items[0].run_ids[0]  # this slot already ran: it is not published again
    finish(store, done_before)
    publisher = RecordingPublisher()
    unfinished_at_each_publish: list[int] = []
    in_flight: list[str] = []
    originally = publisher.publish

    def publish(topic: str, data: bytes, attributes: dict[str, str]) -> str:
        item = next(i for i in items if i.request.to_json() == data)
        in_flight.extend(item.run_ids)
        unfinished_at_each_publish.append(sum(not run_finished(store, r) for r in in_flight))
        return originally(topic, data, attributes)

    publisher.publish = publish  # type: ignore[method-assign]

    def sleep(_: float) -> None:  # each poll, the oldest run in flight finishes
        for run_id in in_flight:
            if not run_finished(store, run_id):
                finish(store, run_id)
                return

    ids = publish_windowed(
        publisher,
        "mlrelay-runs",
        items,
        concurrency=3,
        finished=lambda r: run_finished(store, r),
        sleep=sleep,
    )
    assert len(ids) == 7
    assert max(unfinished_at_each_publish) == 3


def finish(store: LocalFolderStore, run_id: str) -> None:
    record = StageRecord("pipeline", "done", "2026-01-01T00:00:00+00:00", result={})
    store.write(keys.ledger(run_id, "pipeline"), record.to_json())
