"""Messages published per run, by topic and event type, through the cloud-shaped harness: a burst
of run requests with transient faults on every peer (tests/reliability/harness/load.py), once with
every message delivered once and once with every message delivered three times. The goal: at most
10 a run at 1x, at most 20 at 3x, every run's effects exactly once. Exits 1 when a figure is off.
Run from the repo root: `.venv/bin/python bench/messages.py --runs 50 --pipelines 10`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

GOALS = {1: 10, 3: 20}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--pipelines", type=int, default=10)
    parser.add_argument("--settle-seconds", type=float, default=1200)
    args = parser.parse_args()

    # the harness lives with the tests (not type-checked as part of the package)
    cloud_harness = importlib.import_module("tests.reliability.harness.cloud").cloud_harness
    burst = importlib.import_module("tests.reliability.harness.load").burst
    count_messages = importlib.import_module("tests.reliability.harness.messages").count_messages

    ok = True
    for duplicates, goal in GOALS.items():
        with (
            tempfile.TemporaryDirectory() as workdir,
            cloud_harness(Path(workdir), pipelines=args.pipelines, duplicates=duplicates) as h,
        ):
            result = burst(h, args.runs, args.pipelines, settle_seconds=args.settle_seconds)
            counts = count_messages(h, result.run_ids)
        figures = result.figures
        once = not figures.lost and all(
            figures.snapshots[r] == figures.jobs[r] == figures.posts[r] == 1 for r in result.run_ids
        )
        mean = counts.total / max(counts.runs, 1)
        print(f"messages: {args.runs} runs over {args.pipelines} pipelines, {duplicates}x delivery")
        for line in counts.lines():
            print("  " + line)
        print(f"  goal                                   <= {goal} a run: {mean <= goal}")
        print(f"  effects exactly once                   {once}")
        ok = ok and once and mean <= goal and len(result.run_ids) == args.runs
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
