"""`backend: local_job` with real child processes: the job gets a custom job's arguments and
environment, its exit status, stderr, metrics and model folder make the run's outcome; a cancel
stops it; the watchdog's `job_state` follows it; a redelivered DeployRequest starts no second
child."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mlrelay.adapters.local_folder import LocalFolderStore
from mlrelay.config.settings import Settings
from mlrelay.contracts import utc_now
from mlrelay.ports.container import use_ports
from mlrelay.ports.protocols import PipelineOutcome
from mlrelay.registry import Registry, load_registry
from mlrelay.registry.jobs import JobEntry
from mlrelay.stage import keys
from mlrelay.stage.ledger import StageRecord, read_run
from mlrelay_deployer.local_job_backend import PID_FILE, RESULT_FILE, LocalJobBackend
from mlrelay_tools.cli.main import cli
from tests.helpers import REGISTRY, Capture, RecordingChat, make_runtime
from tests.integration.deployer.vertex_deploys import FINGERPRINT, RUN_ID, deploy

# the job: records what it was given, then does what MODE says
JOB = """
import json, os, pathlib, sys, time
ours = ("MLRELAY_", "AIP_", "JOB_")
record = {"argv": sys.argv, "cwd": os.getcwd(), "executable": sys.executable,
          "env": {k: v for k, v in os.environ.items() if k.startswith(ours)}}
with open(os.environ["JOB_RECORD"], "a") as handle:
    handle.write(json.dumps(record) + "\\n")
mode = os.environ["JOB_MODE"]
if mode == "fail":
    for i in range(30):
        print(f"problem line {i}", file=sys.stderr)
    sys.exit(3)
if mode == "sleep":
    time.sleep(60)
model = pathlib.Path(os.environ["AIP_MODEL_DIR"])
(model / "model.pkl").write_bytes(b"model")
metrics = {"accuracy": 0.97, "n_test": 84} if mode == "ok" else {"accuracy": "high"}
pathlib.Path(os.environ["MLRELAY_OUTPUT_DIR"], "metrics.json").write_text(json.dumps(metrics))
"""

ENTRY = JobEntry(
    command=["python", "jobs/job.py"],
    args=["--depth={max_depth}", "--manifest={snapshot_manifest_uri}", "--out={output_dir}"],
    env={"JOB_RUN": "{run_id}"},
)
PARAMETERS = {
    "max_depth": 6,
    "run_id": RUN_ID,
    "snapshot_manifest_uri": "file:///snapshots/manifest.json",
    "snapshot_fingerprint": FINGERPRINT,
    "mlrelay_pipeline": "penguins",
    "mlrelay_lifecycle_destination": "",
}


@pytest.fixture
def registry_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "registry"
    (folder / "jobs").mkdir(parents=True)
    (folder / "jobs" / "job.py").write_text(JOB)
    return folder


@pytest.fixture
def record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "record.jsonl"
    monkeypatch.setenv("JOB_RECORD", str(path))
    monkeypatch.setenv("JOB_MODE", "ok")
    return path


def backend_in(tmp_path: Path, registry_dir: Path) -> LocalJobBackend:
    bucket = tmp_path / "bucket"
    return LocalJobBackend(
        tmp_path / "runs",
        ENTRY,
        registry_dir=registry_dir,
        output_uri=lambda run_id: (bucket / keys.job_output(run_id)).as_uri(),
    )


def start(
    backend: LocalJobBackend, announced: list[dict[str, str]] | None = None
) -> PipelineOutcome:
    return backend.start(
        run_id=RUN_ID,
        pipeline="penguins",
        template="",
        parameters=dict(PARAMETERS),
        labels={},
        announce=(announced if announced is not None else []).append,
    )


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_job_gets_the_custom_job_arguments_and_environment_and_reports_its_metrics(
    tmp_path: Path, registry_dir: Path, record: Path
) -> None:
    announced: list[dict[str, str]] = []
    outcome = start(backend_in(tmp_path, registry_dir), announced)

    output_dir = tmp_path / "bucket" / "jobs" / RUN_ID
    [seen] = records(record)
    assert seen["executable"] == sys.executable  # `python` is mlrelay's own interpreter
    assert seen["cwd"] == str(registry_dir)
    assert seen["argv"] == [
        "jobs/job.py",
        "--depth=6",
        "--manifest=file:///snapshots/manifest.json",
        f"--out={output_dir}/",  # a plain path the child can open
    ]
    assert seen["env"] == {
        "MLRELAY_RUN_ID": RUN_ID,
        "MLRELAY_PIPELINE": "penguins",
        "MLRELAY_SNAPSHOT_MANIFEST_URI": "file:///snapshots/manifest.json",
        "MLRELAY_SNAPSHOT_FINGERPRINT": FINGERPRINT,
        "MLRELAY_OUTPUT_DIR": f"{output_dir}/",
        "AIP_MODEL_DIR": f"{output_dir}/model/",
        "JOB_RUN": RUN_ID,
        "JOB_RECORD": str(record),
        "JOB_MODE": "ok",
    }
    assert outcome.status == "succeeded"
    assert outcome.metrics == {"accuracy": 0.97, "n_test": 84.0}
    assert outcome.outputs == {"model": f"{output_dir.as_uri()}/model/"}
    assert (output_dir / "model" / "model.pkl").read_bytes() == b"model"
    assert outcome.links["output_dir"] == f"{output_dir.as_uri()}/"
    assert outcome.links["log"].endswith(f"/runs/{RUN_ID}/stderr.log")
    assert announced == [outcome.links]
    assert outcome.details["exit_code"] == 0


def test_a_job_that_exits_non_zero_fails_with_the_last_lines_of_its_stderr(
    tmp_path: Path, registry_dir: Path, record: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOB_MODE", "fail")
    backend = backend_in(tmp_path, registry_dir)

    outcome = start(backend)

    assert outcome.status == "failed"
    assert outcome.error is not None
    lines = outcome.error.splitlines()
    assert lines[0] == "the job exited with status 3"
    assert lines[1:] == [f"problem line {i}" for i in range(10, 30)]
    assert outcome.outputs == {} and outcome.metrics == {}
    state = backend.job_state(run_id=RUN_ID, job_name=RUN_ID)
    assert state is not None and state.status == "failed" and state.state == "exit 3"


def test_metrics_that_are_not_numbers_fail_the_run_naming_the_metric(
    tmp_path: Path, registry_dir: Path, record: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOB_MODE", "bad-metrics")

    outcome = start(backend_in(tmp_path, registry_dir))

    assert outcome.status == "failed"
    assert outcome.error is not None and "metrics.json.accuracy" in outcome.error
    assert "'high' is not a number" in outcome.error


def test_a_cancel_stops_the_child_and_the_run_ends_cancelled_with_who_asked(
    tmp_path: Path, registry_dir: Path, record: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOB_MODE", "sleep")
    backend = backend_in(tmp_path, registry_dir)
    outcomes: list[PipelineOutcome] = []
    runner = threading.Thread(target=lambda: outcomes.append(start(backend)))
    started = time.monotonic()
    runner.start()
    while not record.exists():  # the child is running once it has written its record
        assert time.monotonic() - started < 30, "the job never started"
        time.sleep(0.05)
    running = backend.job_state(run_id=RUN_ID, job_name=RUN_ID)
    assert running is not None and running.status == "running"
    asked = {"requested_by": "slack:U0ONCALL", "source": "slack"}

    assert backend.cancel(run_id=RUN_ID, job_name=RUN_ID, requested=asked) == "terminated"
    runner.join(timeout=30)

    assert time.monotonic() - started < 30  # not the job's 60 s sleep
    [outcome] = outcomes
    assert outcome.status == "cancelled"
    assert outcome.details == {"command": asked}
    state = backend.job_state(run_id=RUN_ID, job_name=RUN_ID)
    assert state is not None and state.status == "cancelled"
    with pytest.raises(Exception, match="not running on this machine"):
        backend.cancel(run_id=RUN_ID, job_name=RUN_ID, requested=asked)


def test_a_child_that_ended_without_an_exit_status_is_failed_for_the_watchdog(
    tmp_path: Path, registry_dir: Path, record: Path
) -> None:
    backend = backend_in(tmp_path, registry_dir)
    assert backend.job_state(run_id=RUN_ID, job_name=RUN_ID) is None  # never started
    start(backend)
    workdir = tmp_path / "runs" / RUN_ID
    (workdir / RESULT_FILE).unlink()  # as if the deployer died while waiting for the child
    (workdir / PID_FILE).write_text("999999999")  # and its child is gone

    state = backend.job_state(run_id=RUN_ID, job_name=RUN_ID)

    assert state is not None and state.status == "failed" and state.state == "died"
    assert state.error is not None and "ended without an exit status" in state.error


def job_registry(registry_dir: Path) -> Registry:
    registry = load_registry(REGISTRY)
    spec = registry.pipelines["penguins"].model_copy(
        update={"backend": "local_job", "template": None, "job": ENTRY}
    )
    return registry.model_copy(update={"pipelines": {"penguins": spec}, "base_dir": registry_dir})


@pytest.fixture
def job_runtime(
    settings: Settings, channel: RecordingChat, registry_dir: Path, record: Path
) -> Iterator[Any]:
    yield make_runtime(settings, channel, registry=job_registry(registry_dir))
    use_ports(None)


def test_a_redelivered_deploy_request_starts_no_second_child(
    job_runtime: Any, record: Path
) -> None:
    events = Capture(job_runtime.settings.topics.lifecycle)
    job_runtime.bus.listen(events)

    for _ in range(3):  # at-least-once delivery: the same DeployRequest three times
        deploy(job_runtime)

    assert len(records(record)) == 1  # one child for the run
    finals = [e for e in events.events if e.status == "succeeded"]
    assert [e.event_type for e in finals] == ["pipeline.succeeded"]
    assert finals[0].figures["accuracy"] == 0.97
    record_ = read_run(job_runtime.store, RUN_ID)["pipeline"]
    assert record_.state == "done"
    output = job_runtime.store.uri(keys.job_output(RUN_ID))
    assert (record_.result or {})["outputs"] == {"model": f"{output}/model/"}
    assert (record_.result or {})["backend"] == "local_job"


def test_mlrelay_cancel_stops_a_running_local_job_through_the_command_path(
    settings: Settings, registry_dir: Path, record: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The deployer's claim is `running` while the child runs (here in a thread, as in another
    `mlrelay run`): `mlrelay cancel` finds the job by its run id and stops it."""
    monkeypatch.setenv("JOB_MODE", "sleep")
    store = LocalFolderStore(settings.bucket_dir)
    began = utc_now()
    trigger = {"run_id": RUN_ID, "pipeline": "penguins-job", "trigger": "manual",
               "accepted_at": began.isoformat(), "logical_time": began.isoformat(),
               "parameters": {}}  # fmt: skip
    for stage, result in (("trigger", trigger), ("pipeline", None)):
        state = "done" if result else "running"
        until = (began + timedelta(hours=1)).isoformat()
        record_ = StageRecord(stage, state, began.isoformat(), until, result=result)
        store.write(keys.ledger(RUN_ID, stage), record_.to_json())
    backend = LocalJobBackend(
        settings.home / keys.PIPELINE_RUNS,  # where the CLI's own backend looks
        ENTRY,
        registry_dir=registry_dir,
        output_uri=lambda run_id: store.uri(keys.job_output(run_id)),
    )
    outcomes: list[PipelineOutcome] = []
    runner = threading.Thread(target=lambda: outcomes.append(start(backend)))
    runner.start()
    deadline = time.monotonic() + 30
    while not record.exists():
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.05)
    env = {"MLRELAY_MODE": "embedded", "MLRELAY_HOME": str(settings.home),
           "MLRELAY_REGISTRY": str(REGISTRY)}  # fmt: skip

    done = CliRunner().invoke(cli, ["cancel", RUN_ID, "--json"], env=env)
    runner.join(timeout=30)
    use_ports(None)

    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["outcome"] == "cancelled"
    [outcome] = outcomes
    assert outcome.status == "cancelled"
    assert outcome.details["command"]["source"] == "cli"
