"""Reliability benchmark: a burst of run requests through the cloud-shaped harness (Google's
Pub/Sub emulator with push subscriptions to the four services as functions-framework processes,
the GCS and BigQuery emulators, loopback Vertex AI and Slack), every message delivered
`--duplicates` times, transient 5xx queued on GCS, BigQuery, Vertex AI and Slack.

Prints: messages published, deliveries (with duplicates), runs completed, snapshots / pipeline
jobs / Slack posts per run (each must be exactly 1), messages lost (must be 0). Exits 1 when a
figure is off. Dead letters and replays are exercised by tests/reliability/test_harness.py (the
burst has none by design; their count is printed). Run from the repo root:
`.venv/bin/python bench/reliability.py --runs 200 --pipelines 10`.

`--killed-fraction 0.1`: that share of the Vertex jobs dies silently (a task killed before the
exit handler runs: no reporter), so only Cloud Logging hears of it; the loopback Vertex AI
writes the LogEntry to the log sink's topic and the `mlrelay-job-events` relay must give each
its outcome. Also printed: the jobs killed, and the final states each run's Slack thread
announced (each must be exactly 1).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--pipelines", type=int, default=10)
    parser.add_argument("--duplicates", type=int, default=3)
    parser.add_argument("--settle-seconds", type=float, default=3600)
    parser.add_argument(
        "--killed-fraction",
        type=float,
        default=0.0,
        help="share of the jobs that die silently (no exit handler): the log relay's work",
    )
    args = parser.parse_args()
    if not 0.0 <= args.killed_fraction <= 1.0:
        parser.error("--killed-fraction must be between 0 and 1")

    # the harness lives with the tests (not type-checked as part of the package)
    cloud_harness = importlib.import_module("tests.reliability.harness.cloud").cloud_harness
    burst = importlib.import_module("tests.reliability.harness.load").burst

    with (
        tempfile.TemporaryDirectory() as workdir,
        cloud_harness(
            Path(workdir), pipelines=args.pipelines, duplicates=args.duplicates
        ) as harness,
    ):
        killed = set[str]()
        if args.killed_fraction:
            harness.ending = silent_deaths(args.killed_fraction, killed)
        result = burst(
            harness,
            args.runs,
            args.pipelines,
            settle_seconds=args.settle_seconds,
            quiet_timeout=args.settle_seconds,
        )
    figures = result.figures
    print(
        f"reliability: {args.runs} runs over {args.pipelines} pipelines, every message "
        f"delivered {args.duplicates}x, transient faults on GCS/BigQuery/Vertex/Slack"
    )
    for line in figures.lines(result.run_ids):
        print("  " + line)
    if args.killed_fraction:
        print(f"  jobs killed silently       {len(killed)} (no exit handler; the log relay)")
    print(f"  wall time                  {result.seconds:.0f} s")
    once = all(
        figures.snapshots[r] == figures.jobs[r] == figures.posts[r] == 1
        and len(figures.final_states.get(r, [])) == 1
        for r in result.run_ids
    )
    ok = once and not figures.lost and len(result.run_ids) == args.runs
    print("PASS" if ok else "FAIL: a figure is not exactly once, or a run was lost")
    return 0 if ok else 1


def silent_deaths(fraction: float, killed: set[str]) -> Callable[[dict[str, Any]], str]:
    """How each job ends: every (1/fraction)-th run, in the order the jobs come, has a task killed
    before the exit handler (recorded in `killed`); the others report their success."""
    seen: list[str] = []

    def ending(values: dict[str, Any]) -> str:
        seen.append(values["run_id"])
        if len(killed) < round(len(seen) * fraction):
            killed.add(values["run_id"])
            return "task_killed"
        return "reporter"

    return ending


if __name__ == "__main__":
    sys.exit(main())
