"""The run history: summaries land on one key per run and come back oldest first; the baseline is
the newest good run before, of the same schedule when asked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from mlrelay.adapters.local_folder import LocalFolderStore
from mlrelay.history import RunSummary, last_good, list_summaries, read_summary, write_summary

T0 = datetime(2026, 3, 1, 6, tzinfo=UTC)


def _summary(run_id: str, hours: int, status: str = "succeeded", schedule: str | None = None):
    return RunSummary(
        run_id=run_id,
        pipeline="penguins",
        status=status,  # type: ignore[arg-type]
        schedule=schedule,
        logical_time=T0 + timedelta(hours=hours),
        metrics={"accuracy": 0.9},
        schema=[{"name": "x", "type": "int64"}],
    )


def test_summaries_round_trip_and_list_by_logical_time(tmp_path: Path) -> None:
    store = LocalFolderStore(tmp_path)
    for run_id, hours in (("run-c", 2), ("run-a", 0), ("run-b", 1)):
        write_summary(store, _summary(run_id, hours))
    store.write("history/penguins/notes.txt", b"not a summary")
    store.write("history/penguins/broken.json", b"{")
    assert [s.run_id for s in list_summaries(store, "penguins")] == ["run-a", "run-b", "run-c"]
    again = read_summary(store, "penguins", "run-b")
    assert again is not None and again.schema_ == [{"name": "x", "type": "int64"}]
    assert read_summary(store, "penguins", "nope") is None


def test_the_baseline_is_the_newest_good_run_before_of_the_same_schedule(tmp_path: Path) -> None:
    store = LocalFolderStore(tmp_path)
    write_summary(store, _summary("run-a", 0, schedule="daily"))
    write_summary(store, _summary("run-b", 1, schedule="hourly"))
    write_summary(store, _summary("run-c", 2, status="failed", schedule="daily"))
    write_summary(store, _summary("run-e", 5, schedule="daily"))  # later: never a baseline
    current = _summary("run-d", 3, schedule="daily")
    assert (last_good(store, "penguins", before=current) or current).run_id == "run-b"
    found = last_good(store, "penguins", before=current, schedule="daily")
    assert found is not None and found.run_id == "run-a"
    assert last_good(store, "penguins", before=_summary("run-0", -1)) is None
