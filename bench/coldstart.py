"""Cold-start cost of each function: import time of its main.py in a fresh interpreter.

Prints the median of several runs per service beside `google.cloud.aiplatform` (the high-level
Vertex SDK) measured in the same run, and checks the goals: trigger and notifier <= 0.5 s,
snapshotter and deployer <= 1.0 s. Run from the repo root: `python bench/coldstart.py`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GOALS = {"trigger": 0.5, "notifier": 0.5, "snapshotter": 1.0, "deployer": 1.0}
PROBE = """
import json, resource, sys, time
sys.path.insert(0, {path!r})
start = time.perf_counter()
import {module}
elapsed = time.perf_counter() - start
print(json.dumps({{"seconds": elapsed,
                  "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def measure(module: str, path: str, runs: int) -> tuple[float, float]:
    code = PROBE.format(module=module, path=path)
    samples = []
    for i in range(runs + 1):  # the first run warms the bytecode cache and is dropped
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
        )
        if i:
            samples.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return (
        statistics.median(s["seconds"] for s in samples),
        statistics.median(s["max_rss_mb"] for s in samples),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    baseline_s, baseline_mb = measure("google.cloud.aiplatform", str(REPO), args.runs)
    print(f"{'module':<32}{'median import s':>16}{'max RSS MB':>12}{'goal s':>8}  verdict")
    print(
        f"{'google.cloud.aiplatform':<32}{baseline_s:>16.3f}{baseline_mb:>12.0f}{'':>8}  baseline"
    )
    missed = 0
    for service, goal in GOALS.items():
        seconds, rss = measure("main", str(REPO / "services" / service), args.runs)
        verdict = "meets goal" if seconds <= goal else "MISSES goal"
        missed += seconds > goal
        print(
            f"{service + '/main.py':<32}{seconds:>16.3f}{rss:>12.0f}{goal:>8.1f}  {verdict} "
            f"({seconds / baseline_s:.0%} of the baseline)"
        )
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
