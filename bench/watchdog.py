"""Watchdog bench: the cost of one pass for 100 pipelines, counted on the GCS emulator.

The bucket (fake-gcs-server through GcsStore, the cloud's store) holds 100 pipelines, each
with an hourly schedule whose last 48 h of ticks were all accepted (4,800 runs in the ledger), one
open submitted run each (100 open runs in the index) and `--history` settled runs each. Every
store call is counted by method; "API calls" are the pipeline-service look-ups (one per open
submitted run: GetPipelineJob / get_run on a deployment) and the publishes.

Three passes with an injected clock: the first (no checkpoint yet: it starts each schedule's
checkpoint and reads no slot),
a steady one 5 minutes later (no new slot), one an hour later (one new slot per schedule, whose
tick never came: the seed stops at the first pass, so each schedule reports it missed once).
Baseline, measured in the same run on the same bucket: the naive pass without the open-run index
or the checkpoints (list the whole ledger, read every run, re-read 48 h of slots every time).

Run from the repo root: `python bench/watchdog.py` (needs the `dev` extra: fake-gcs-server).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


class CountingStore:
    """Any ObjectStore, with every call counted by method name."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.inner, name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return method(*args, **kwargs)

        return counted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pipelines", type=int, default=100)
    parser.add_argument("--history", type=int, default=5, help="settled runs per pipeline")
    args = parser.parse_args()

    import structlog

    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(40)  # errors only: no pass chatter
    )
    peers = importlib.import_module("tests.integration.peers")
    kit = importlib.import_module("tests.watchdog_kit")
    helpers = importlib.import_module("tests.helpers")
    from mlrelay.config.settings import Settings
    from mlrelay.history import RunSummary
    from mlrelay.ports.protocols import JobState
    from mlrelay.registry import ScheduleSpec
    from mlrelay.schedules.expected import slot_run_ids
    from mlrelay.schedules.members import all_schedules
    from mlrelay.schedules.slots import CronSchedule
    from mlrelay.stage import keys
    from mlrelay.stage.ledger import list_runs, read_run
    from mlrelay.stage.records import StageRecord
    from mlrelay_deployer.watchdog.sweep import run_pass

    now = datetime(2026, 11, 30, 12, 10, tzinfo=UTC)
    names = [f"p{i:03d}" for i in range(args.pipelines)]
    schedule = ScheduleSpec(cron="0 * * * *", time_zone="Europe/Amsterdam", grace="5m")
    registry = kit.registry_of(
        {n: kit.pipeline_spec(schedules=(schedule,), deadline="1d") for n in names}
    )
    tmp = tempfile.mkdtemp()
    (Path(tmp) / "gcs").mkdir()
    with peers.gcs_emulator(Path(tmp) / "gcs") as url:
        import os

        os.environ["STORAGE_EMULATOR_HOST"] = url
        gcs = importlib.import_module("tests.integration.google_backend").new_bucket("wd")
        print(f"seeding {args.pipelines} pipelines on the GCS emulator ...", flush=True)
        started = time.perf_counter()
        cron = CronSchedule(schedule.cron, schedule.time_zone)
        slots = cron.between(now - timedelta(hours=49), now)
        record = StageRecord("trigger", "done", now.isoformat(), None, now.isoformat(), {})
        writes: list[tuple[str, bytes]] = []
        for owned in all_schedules(registry):
            for slot in slots:
                for run_id in slot_run_ids(registry, owned, slot):
                    writes.append((keys.ledger(run_id, "trigger"), record.to_json()))
            for h in range(args.history):
                run_id = f"{owned.owner}-old-{h:04d}"
                writes.append((keys.ledger(run_id, "trigger"), record.to_json()))
                summary = RunSummary(run_id=run_id, pipeline=owned.owner, status="succeeded")
                writes.append((f"history/{owned.owner}/{run_id}.json", summary.to_json()))
        with ThreadPoolExecutor(16) as pool:  # seeding only: the passes run in one thread
            list(pool.map(lambda kv: gcs.write(*kv), writes))
        for owned in all_schedules(registry):
            run_id = f"{owned.owner}-open-0001"
            two_hours_ago = now - timedelta(hours=2)
            kit.accepted(gcs, run_id, slot=two_hours_ago, at=two_hours_ago, pipeline=owned.owner)
            kit.snapshotted(gcs, run_id, two_hours_ago)
            kit.submitted(gcs, run_id, two_hours_ago)
        print(f"seeded in {time.perf_counter() - started:.0f} s\n")

        store = CountingStore(gcs)
        settings = Settings(home=Path(tmp) / "home", registry_path=helpers.REGISTRY)
        publisher = helpers.RecordingPublisher()
        ports = kit.watchdog_ports(settings, store, registry, publisher)
        backend = kit.Backend(
            {f"{n}-open-0001": JobState("PIPELINE_STATE_RUNNING", "running") for n in names}
        )
        clock = kit.Clock(now)
        rows = []
        for label, step in (
            ("first pass (starts the checkpoints)", 0),
            ("steady pass (+5 min)", 5),
            ("a new slot, never ticked (+60 min)", 60),
        ):
            clock.advance(minutes=step)
            store.calls.clear()
            publisher.messages.clear()
            asked = len(backend.asked)
            t0 = time.perf_counter()
            report = run_pass(kit.deps_for(ports, clock, backend))
            seconds = time.perf_counter() - t0
            rows.append(
                (
                    label,
                    dict(store.calls),
                    len(backend.asked) - asked,
                    len(publisher.messages),
                    seconds,
                    report.slots_checked,
                )
            )

        store.calls.clear()
        t0 = time.perf_counter()
        for run_id in list_runs(store):  # the naive pass: the whole ledger, every run
            records = read_run(store, run_id)
            del records
        for owned in all_schedules(registry):
            for slot in cron.between(now - timedelta(hours=48), now - timedelta(minutes=5)):
                for run_id in slot_run_ids(registry, owned, slot):
                    store.read(keys.ledger(run_id, "trigger"))
        naive = (dict(store.calls), time.perf_counter() - t0)

    print(
        f"{args.pipelines} pipelines, hourly schedules, {args.pipelines} open runs, "
        f"{len(slots) * args.pipelines + args.history * args.pipelines} runs of ledger history"
    )
    print(f"{'pass':<34}{'GCS ops':>9}  {'by method':<44}{'API':>5}{'pub':>5}{'slots':>7}{'s':>7}")
    for label, calls, api, pubs, seconds, checked in rows:
        by = ", ".join(f"{k} {v}" for k, v in sorted(calls.items()))
        print(
            f"{label:<34}{sum(calls.values()):>9}  {by:<44}{api:>5}{pubs:>5}{checked:>7}"
            f"{seconds:>7.2f}"
        )
    by = ", ".join(f"{k} {v}" for k, v in sorted(naive[0].items()))
    print(
        f"{'baseline: naive pass (no index)':<34}{sum(naive[0].values()):>9}  {by:<44}"
        f"{'':>5}{'':>5}{'':>7}{naive[1]:>7.2f}"
    )


if __name__ == "__main__":
    main()
