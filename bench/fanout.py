"""Fan-out benchmark: one scheduler tick whose group fans out to N pipelines, N = 1, 10, 50.

For each N the bench publishes the tick Cloud Scheduler would publish for a group of N pipelines
(`tick_request`: a RunRequest with `schedule` and no logical time, with the job's attributes) and
times, from the publish, the last `pipeline.submitted` event and the last final card (the run's
message showing `pipeline.succeeded`), twice:

- on the cloud-shaped harness (Pub/Sub emulator pushing to the four services as
  functions-framework processes, GCS and BigQuery emulators, loopback Vertex AI and Slack); the
  jobs are completed by the shipped exit-handler reporter (`harness.complete_new_jobs()`);
- on the embedded bus (the services' handlers in this process, `MLRELAY_BUS_WORKERS` threads),
  with a pipeline backend that accepts and finishes a run at once instead of `kfp.local` (which
  trains for seconds per run): what is timed is mlrelay's relaying, not training.

Goal: T(50) <= 10 x T(1) on the harness. Each group's members carry their own `seed`, so the
three ticks' runs never share a run id. Run from the repo root: `.venv/bin/python bench/fanout.py`.
"""

from __future__ import annotations

import argparse
import base64
import importlib
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SIZES = (1, 10, 50)
GOAL = 10.0  # T(50) / T(1) on the harness
CRON = "0 6 * * *"


def group_name(size: int) -> str:
    return f"fanout{size}"


def group_yaml(sizes: tuple[int, ...], pipeline: Callable[[int], str]) -> str:
    """A `groups:` section: per size N a group of pipelines 0..N-1, one schedule each; member
    seeds are `N` so the groups' runs have distinct ids."""
    lines = ["groups:"]
    for size in sizes:
        lines.append(f"  {group_name(size)}:")
        lines.append("    members:")
        lines += [
            f"      - {{pipeline: {pipeline(i)}, parameters: {{seed: {size}}}}}"
            for i in range(size)
        ]
        lines.append("    schedules:")
        lines.append(f'      - {{cron: "{CRON}", time_zone: UTC}}')
    return "\n".join(lines) + "\n"


def embedded_registry_yaml(pipelines: int, template: Path, sizes: tuple[int, ...]) -> str:
    lines = ["version: 1", "pipelines:"]
    for i in range(pipelines):
        lines += [
            f"  fanout-{i}:",
            '    source: {sql: "SELECT species, island, year FROM penguins"}',
            f"    template: {template.as_posix()}",
            "    backend: local",
            "    parameters: {seed: 42}",
            "    overridable: [seed]",
            '    notify: {slack_channel: "#ml-bench", on_success: always}',
        ]
    return "\n".join(lines) + "\n" + group_yaml(sizes, lambda i: f"fanout-{i}")


@dataclass
class Timing:
    size: int
    submitted: list[float] = field(default_factory=list)  # seconds from the tick, per run
    final: list[float] = field(default_factory=list)
    stages: dict[str, float] = field(default_factory=dict)  # event type -> its last, s from tick

    @property
    def last_submitted(self) -> float:
        return max(self.submitted)

    @property
    def last_final(self) -> float:
        return max(self.final)


def curve(timings: list[Timing]) -> list[str]:
    """The table: per N, the last submission and last final card, and their ratio to N = 1."""
    base = timings[0]
    lines = [f"{'N':>4}{'last submitted s':>19}{'x T(1)':>8}{'last final card s':>20}{'x T(1)':>8}"]
    for t in timings:
        lines.append(
            f"{t.size:>4}{t.last_submitted:>19.2f}{t.last_submitted / base.last_submitted:>8.1f}"
            f"{t.last_final:>20.2f}{t.last_final / base.last_final:>8.1f}"
        )
    return lines


def where_time_goes(timing: Timing) -> list[str]:
    """Per lifecycle event type, when its last one of the tick's runs happened."""
    ordered = sorted(timing.stages.items(), key=lambda item: item[1])
    return [f"{event_type:<24}{seconds:>8.2f} s" for event_type, seconds in ordered]


def ratio(timings: list[Timing]) -> float:
    return timings[-1].last_final / timings[0].last_final


# --- the cloud-shaped harness ----------------------------------------------------------------


def tick(owner: str) -> tuple[bytes, dict[str, str]]:
    from mlrelay.registry import ScheduleSpec
    from mlrelay_tools.schedules.jobs import tick_request

    schedule = ScheduleSpec(cron=CRON, time_zone="UTC")
    request = tick_request(owner, schedule)
    return request.to_json(), {**request.attributes(), "schedule": schedule.name}


def run_harness(sizes: tuple[int, ...], timeout: float) -> list[Timing]:
    cloud: Any = importlib.import_module("tests.reliability.harness.cloud")
    timings = []
    with (
        tempfile.TemporaryDirectory() as workdir,
        cloud.cloud_harness(
            Path(workdir),
            pipelines=max(sizes),
            extra_registry=group_yaml(sizes, lambda i: f"harness-{i}"),
        ) as harness,
    ):
        warm_up_harness(harness, timeout)
        for size in sizes:
            timings.append(harness_tick(harness, size, timeout))
            print(
                f"  harness N={size}: {timings[-1].last_final:.1f} s to the last final card",
                flush=True,
            )
    return timings


def warm_up_harness(harness: Any, timeout: float) -> None:
    """One manual run first, so T(1) is not the services' first request (their imports)."""
    from mlrelay.contracts import RunRequest

    request = RunRequest(pipeline="harness-0", dedup_key="warm-up")
    harness.publish(harness.topics.runs, request.to_json(), request.attributes())
    harness.wait_until(
        lambda: any(e.event_type == "pipeline.succeeded" for e in harness.events()),
        timeout,
        "the warm-up run",
    )


def harness_tick(harness: Any, size: int, timeout: float) -> Timing:
    group = group_name(size)
    data, attributes = tick(group)
    began_wall, began = time.time(), time.monotonic()
    harness.publish(harness.topics.runs, data, attributes)
    timing = Timing(size)
    deadline = began + timeout
    while time.monotonic() < deadline:
        harness.complete_new_jobs()
        harness.drain()
        events = harness.events()
        runs = {
            e.run_id
            for e in events
            if e.event_type == "trigger.accepted" and e.details.get("requested_as") == group
        }
        submitted = {
            e.run_id: e.occurred_at.timestamp() - began_wall
            for e in events
            if e.event_type == "pipeline.submitted" and e.run_id in runs
        }
        finals = final_cards(harness, runs)
        if len(runs) == size and len(submitted) == size and len(finals) == size:
            timing.submitted = list(submitted.values())
            timing.final = [at - began for at in finals.values()]
            for e in events:
                if e.run_id in runs:
                    since = e.occurred_at.timestamp() - began_wall
                    timing.stages[e.event_type] = max(timing.stages.get(e.event_type, 0), since)
            return timing
        time.sleep(0.1)
    raise SystemExit(f"N={size}: not all {size} runs reached a final card in {timeout:.0f} s")


def final_cards(harness: Any, runs: set[str]) -> dict[str, float]:
    """run id -> when (monotonic) the loopback Slack first accepted its `pipeline.succeeded`."""
    found: dict[str, float] = {}
    for call in harness.slack.delivered():
        text = str(call.body.get("text", ""))
        if "pipeline.succeeded" not in text:
            continue
        for run_id in runs:
            if f"run {run_id}" in text and run_id not in found:
                found[run_id] = call.at
    return found


# --- the embedded bus ------------------------------------------------------------------------


class InstantBackend:
    """Accepts and finishes a run at once (the embedded bench times relaying, not training)."""

    def completion_destination(self, run_id: str) -> str:
        return ""

    def start(
        self,
        *,
        run_id: str,
        pipeline: str,
        template: str,
        parameters: dict[str, Any],
        labels: dict[str, str],
        announce: Callable[[dict[str, str]], None],
    ) -> Any:
        from mlrelay.ports.protocols import PipelineOutcome

        announce({})
        return PipelineOutcome("succeeded", job_name=f"instant-{run_id}")


@contextmanager
def embedded(workdir: Path, sizes: tuple[int, ...]) -> Iterator[Any]:
    from mlrelay.config.settings import Settings
    from mlrelay.ports.container import use_ports
    from mlrelay.registry import load_registry
    from mlrelay_tools.demo import seed_demo_warehouse
    from mlrelay_tools.local.runtime import build_local_runtime

    template = REPO / "pipelines" / "penguins" / "penguins_pipeline.yaml"
    registry_path = workdir / "registry.yaml"
    registry_path.write_text(embedded_registry_yaml(max(sizes), template, sizes))
    registry = load_registry(registry_path)
    settings = Settings(home=workdir / "home", registry_path=registry_path, log_level="WARNING")
    seed_demo_warehouse(settings.warehouse_path)
    backend = InstantBackend()
    finals: dict[str, float] = {}
    lock = threading.Lock()

    def time_cards(handler: Callable[[Any], None]) -> Callable[[Any], None]:
        def timed(event: Any) -> None:
            handler(event)  # the card is posted / updated when the handler returns
            message = event.data["message"]
            if message.get("attributes", {}).get("event_type") == "lifecycle.pipeline.succeeded":
                run_id = json.loads(base64.b64decode(message["data"]))["run_id"]
                with lock:
                    finals.setdefault(run_id, time.monotonic())

        return timed

    class Chat:
        name = "bench"
        plain_text = True

        def post(self, text: str, blocks: list[dict[str, Any]] | None = None) -> None:
            return None

    runtime = build_local_runtime(
        settings,
        registry=registry,
        chat=Chat(),
        pipeline_backends=dict.fromkeys(registry.pipelines, backend),
        wrap={"mlrelay-notifier": time_cards},
    )
    runtime.finals = finals  # type: ignore[attr-defined]
    try:
        yield runtime
    finally:
        use_ports(None)


def run_embedded(sizes: tuple[int, ...]) -> list[Timing]:
    from mlrelay.contracts import LifecycleEvent, RunRequest

    timings = []
    with tempfile.TemporaryDirectory() as workdir, embedded(Path(workdir), sizes) as runtime:
        submitted: dict[str, float] = {}

        def listen(topic: str, message: Any) -> None:
            if topic != runtime.settings.topics.lifecycle:
                return
            event = LifecycleEvent.model_validate_json(message.data)
            if event.event_type == "pipeline.submitted":
                submitted.setdefault(event.run_id, time.monotonic())

        runtime.bus.listen(listen)
        warm_up = RunRequest(pipeline="fanout-0", dedup_key="warm-up")  # imports, caches
        runtime.bus.publish(runtime.settings.topics.runs, warm_up.to_json(), warm_up.attributes())
        runtime.bus.run_until_idle(600)
        for size in sizes:
            data, attributes = tick(group_name(size))
            submitted.clear()
            runtime.finals.clear()
            began = time.monotonic()
            runtime.bus.publish(runtime.settings.topics.runs, data, attributes)
            runtime.bus.run_until_idle(600)
            if len(submitted) != size or len(runtime.finals) != size:
                raise SystemExit(
                    f"embedded N={size}: {len(submitted)} submitted, {len(runtime.finals)} final"
                )
            timing = Timing(size)
            timing.submitted = [at - began for at in submitted.values()]
            timing.final = [at - began for at in runtime.finals.values()]
            timings.append(timing)
    return timings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--skip-harness", action="store_true")
    parser.add_argument("--skip-embedded", action="store_true")
    args = parser.parse_args()
    sizes = tuple(sorted(args.sizes))
    ok = True
    if not args.skip_embedded:
        timings = run_embedded(sizes)
        workers = int(os.environ.get("MLRELAY_BUS_WORKERS", "4"))
        print(f"\nembedded bus ({workers} workers, instant pipeline backend): one tick -> N runs")
        for line in curve(timings):
            print("  " + line)
        spread = statistics.median(timings[-1].final)
        print(f"  N={sizes[-1]}: median final card {spread:.2f} s")
    if not args.skip_harness:
        timings = run_harness(sizes, args.timeout)
        print("\ncloud-shaped harness: one tick -> N runs (jobs completed by the exit handler)")
        for line in curve(timings):
            print("  " + line)
        for timing in timings:
            print(f"  N={timing.size}: the last event of each type, from the tick")
            for line in where_time_goes(timing):
                print("    " + line)
        met = ratio(timings) <= GOAL
        print(
            f"  T({sizes[-1]}) / T({sizes[0]}) to the last final card: {ratio(timings):.1f}x"
            f"   goal <= {GOAL:.0f}x   {'met' if met else 'MISSED'}"
        )
        ok = met
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
