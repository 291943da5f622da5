"""Fan-out benchmark: one scheduler tick whose group fans out to N pipelines, N = 1, 10, 50.

For each N the bench publishes the tick Cloud Scheduler would publish for a group of N pipelines
(`tick_request`: a RunRequest with `schedule` and no logical time, with the job's attributes) and
times, from the publish, the last `pipeline.submitted` event and the last final card (the run's
message showing `pipeline.succeeded`), twice:

- on the cloud-shaped harness (Pub/Sub emulator pushing to the four services as
  functions-framework processes, GCS and BigQuery emulators, loopback Vertex AI and Slack); the
  jobs are completed by the shipped exit-handler reporter (`harness.complete_new_jobs()`). With
  `--push emulator` the emulator pushes (2 at once per subscription, bench/push_window.py); with
  `--push deployed` bench/push_pump.py pushes each function's messages as many at once as the
  deployed function serves; `both` (the default) runs the two. Per N it prints where the time
  goes: the last event of each type, and each proxy's requests (pushes in flight, time queued
  for and busy in each peer);
- on the embedded bus (the services' handlers in this process, `MLRELAY_BUS_WORKERS` threads),
  with a pipeline backend that accepts and finishes a run at once instead of `kfp.local` (which
  trains for seconds per run): what is timed is mlrelay's relaying, not training.

Goal: T(50) <= 10 x T(1) on the harness (judged on the deployed push). Each group's members
carry their own `seed`, so the three ticks' runs never share a run id. Run from the repo root:
`.venv/bin/python bench/fanout.py`.
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
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.push_pump import DEPLOYED_WINDOW, PushPump  # noqa: E402 (after the repo is on the path)

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
    peers: list[PeerLoad] = field(default_factory=list)  # the harness: each proxy's requests

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


@dataclass(frozen=True)
class PeerLoad:
    """The requests one FaultProxy passed during a tick (a function's pushes, or a peer's calls),
    times in seconds from the tick."""

    name: str
    requests: int
    most_at_once: int  # the most requests in flight at one moment
    median_seconds: float  # arrival -> answer
    median_upstream: float  # of that, the peer's own time (less the wait for a serial proxy)
    first: float  # the first arrival
    last: float  # the last answer
    queued: float  # seconds requests waited for a serial proxy's one upstream, in all
    busy: float  # the peer's own seconds, in all: for a serial proxy, its upstream's busy time


def most_at_once(spans: list[tuple[float, float]]) -> int:
    """The most (start, end) spans open at one moment; one ending as another starts: not both."""
    edges = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    most = now = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    return most


def peer_load(name: str, entries: list[Any], began: float) -> PeerLoad:
    spans = [(e.at - began, e.at - began + e.seconds) for e in entries]
    return PeerLoad(
        name,
        len(entries),
        most_at_once(spans),
        statistics.median(e.seconds for e in entries) if entries else 0.0,
        statistics.median(e.seconds - e.waited for e in entries) if entries else 0.0,
        min((start for start, _ in spans), default=0.0),
        max((end for _, end in spans), default=0.0),
        sum(e.waited for e in entries),
        sum(e.seconds - e.waited for e in entries),
    )


def load_table(loads: list[PeerLoad]) -> list[str]:
    """Per proxy: how many requests, how many at once at most, how long each took."""
    lines = [
        f"{'peer':<22}{'requests':>9}{'most at once':>14}{'median s':>10}{'upstream s':>12}"
        f"{'first s':>9}{'last s':>8}{'queued s':>10}{'busy s':>9}"
    ]
    for p in loads:
        lines.append(
            f"{p.name:<22}{p.requests:>9}{p.most_at_once:>14}{p.median_seconds:>10.2f}"
            f"{p.median_upstream:>12.2f}{p.first:>9.2f}{p.last:>8.2f}{p.queued:>10.1f}"
            f"{p.busy:>9.1f}"
        )
    return lines


def ratio(timings: list[Timing]) -> float:
    return timings[-1].last_final / timings[0].last_final


# --- the cloud-shaped harness ----------------------------------------------------------------


def tick(owner: str) -> tuple[bytes, dict[str, str]]:
    from mlrelay.registry import ScheduleSpec
    from mlrelay_tools.schedules.jobs import tick_request

    schedule = ScheduleSpec(cron=CRON, time_zone="UTC")
    request = tick_request(owner, schedule)
    return request.to_json(), {**request.attributes(), "schedule": schedule.name}


PUSHES = {
    "emulator": "the emulator pushes (2 at once per subscription)",
    "deployed": "pushed at the deployed concurrency (bench/push_pump.py)",
}


def run_harness(sizes: tuple[int, ...], timeout: float, push: str) -> list[Timing]:
    """`push`: "emulator" (its own push loops) or "deployed" (each function's subscription
    pulled and pushed as many at once as infra/ lets the function serve)."""
    cloud: Any = importlib.import_module("tests.reliability.harness.cloud")
    timings = []
    with (
        tempfile.TemporaryDirectory() as workdir,
        cloud.cloud_harness(
            Path(workdir),
            pipelines=max(sizes),
            extra_registry=group_yaml(sizes, lambda i: f"harness-{i}"),
            # gunicorn threads per function: at least the most requests one deployed function
            # serves at once (functions-framework's default is 4 per core)
            env_overrides={"THREADS": str(max(DEPLOYED_WINDOW.values()))},
        ) as harness,
        ExitStack() as pumps,
    ):
        if push == "deployed":
            for pump in deployed_pumps(harness):
                pumps.callback(pump.stop)
        warm_up_harness(harness, timeout)
        for size in sizes:
            timings.append(harness_tick(harness, size, timeout))
            print(
                f"  harness ({push} push) N={size}: {timings[-1].last_final:.1f} s"
                " to the last final card",
                flush=True,
            )
    return timings


def deployed_pumps(harness: Any) -> list[PushPump]:
    """One pump per function subscription, as many pushes at once as the function serves."""
    cloud: Any = importlib.import_module("tests.reliability.harness.cloud")
    pumps = []
    for name in json.loads(harness.env["MLRELAY_SUBSCRIPTION_TOPICS"]):
        function = name.split("-dup")[0]
        subscription = f"projects/{cloud.PROJECT}/subscriptions/{name}"
        endpoint = harness.services[function].proxy.url + "/"
        pumps.append(PushPump(subscription, endpoint, DEPLOYED_WINDOW[function]).start())
    return pumps


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
    proxies = journal(harness)
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
            timing.peers = [
                peer_load(name, list(proxy.journal or []), began) for name, proxy in proxies.items()
            ]
            return timing
        time.sleep(0.1)
    raise SystemExit(f"N={size}: not all {size} runs reached a final card in {timeout:.0f} s")


def journal(harness: Any) -> dict[str, Any]:
    """Switch on (afresh) the journal of every proxy: the functions' (each push) and the peers'."""
    proxies = {name: service.proxy for name, service in harness.services.items()}
    proxies.update({name: proxy for name, proxy in harness.hosts.items()})
    for proxy in proxies.values():
        with proxy.lock:
            proxy.journal = []
    return proxies


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

    def cancel(self, *, run_id: str, job_name: str, requested: dict[str, str]) -> str:
        return "PIPELINE_STATE_CANCELLED"  # the bench never cancels; the protocol asks for it

    def job_state(self, *, run_id: str, job_name: str) -> None:
        return None  # `start` returns each run's end: there is no job to ask about later

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
    parser.add_argument(
        "--push",
        choices=("both", *PUSHES),
        default="both",
        help="on the harness: the emulator's push, the deployed concurrency, or both (default)",
    )
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
    pushes = list(PUSHES) if args.push == "both" else [args.push]
    for push in [] if args.skip_harness else pushes:
        timings = run_harness(sizes, args.timeout, push)
        print(f"\ncloud-shaped harness, {PUSHES[push]}: one tick -> N runs")
        for line in curve(timings):
            print("  " + line)
        for timing in timings:
            print(f"  N={timing.size}: the last event of each type, from the tick")
            for line in where_time_goes(timing):
                print("    " + line)
            print(f"  N={timing.size}: the requests each proxy passed, from the tick")
            for line in load_table(timing.peers):
                print("    " + line)
        met = ratio(timings) <= GOAL
        print(
            f"  T({sizes[-1]}) / T({sizes[0]}) to the last final card: {ratio(timings):.1f}x"
            f"   goal <= {GOAL:.0f}x   {'met' if met else 'MISSED'}"
        )
        if push == pushes[-1]:  # the goal is judged on the deployed concurrency when it ran
            ok = met
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
