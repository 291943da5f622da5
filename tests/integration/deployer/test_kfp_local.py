"""The local backend's runner (mlrelay_deployer.kfp_local): a pipeline that cannot start, or a
child that dies without a result, is a failed run with the log's tail, never an exception; a
run never downloads a component's packages_to_install; a cancelled run stops with its tasks."""

import os
import sys
import threading
import time
from pathlib import Path

import pytest
from kfp import compiler, dsl

from mlrelay_deployer.kfp_local import (
    CANCEL_FILE,
    PID_FILE,
    LocalRunResult,
    cancel_local_run,
    run_local_pipeline,
)
from tests.helpers import PENGUINS_TEMPLATE


def test_missing_template_fails_without_raising(tmp_path: Path) -> None:
    result = run_local_pipeline(tmp_path / "nope.yaml", {}, tmp_path / "run")

    assert result.status == "failed"
    assert result.failed_task is None
    assert result.error
    assert Path(result.log_path).is_file()


def test_child_crash_without_result_reports_log_tail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_python = tmp_path / "fake-python"
    fake_python.write_text("#!/bin/sh\nfor i in $(seq 1 30); do echo line $i; done\nexit 3\n")
    fake_python.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(fake_python))

    result = run_local_pipeline(PENGUINS_TEMPLATE, {}, tmp_path / "run")

    assert result.status == "failed"
    assert result.error is not None
    assert result.error.splitlines() == [f"line {i}" for i in range(11, 31)]


# On PyPI (cowsay 6.1, a pure-Python wheel) and not installed here: without the runner's
# PIP_NO_INDEX, the task's bootstrap would download it into the deployer's environment.
NOT_INSTALLED = "cowsay==6.1"


@pytest.mark.pipeline
def test_local_run_installs_nothing_a_component_lists_that_is_not_here(tmp_path: Path) -> None:
    @dsl.component(base_image="python:3.11-slim", packages_to_install=[NOT_INSTALLED])
    def speak() -> str:
        import cowsay  # type: ignore[import-not-found]

        return str(cowsay.get_output_string("cow", "moo"))

    @dsl.pipeline(name="needs-a-download")
    def needs_a_download() -> None:
        speak()

    template = tmp_path / "needs-a-download.yaml"
    compiler.Compiler().compile(needs_a_download, str(template))

    result = run_local_pipeline(template, {}, tmp_path / "run")

    assert result.status == "failed"
    assert result.failed_task == "speak"
    log = Path(result.log_path).read_text()
    assert f"No matching distribution found for {NOT_INSTALLED}" in log
    assert not any(Path(p).joinpath("cowsay").exists() for p in sys.path)


def test_cancel_stops_the_running_child_and_its_tasks_and_the_run_is_cancelled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The child (here a shell standing in for it) and a task process it started are stopped
    together (one process group); the runner reports `cancelled`, not a failure."""
    task_pid = tmp_path / "task.pid"
    fake_python = tmp_path / "fake-python"
    fake_python.write_text(f"#!/bin/sh\nsleep 60 &\necho $! > {task_pid}\nwait\n")
    fake_python.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(fake_python))
    workdir = tmp_path / "run"
    results: list[LocalRunResult] = []
    runner = threading.Thread(
        target=lambda: results.append(run_local_pipeline(PENGUINS_TEMPLATE, {}, workdir))
    )
    runner.start()
    deadline = time.monotonic() + 10
    while not (task_pid.exists() and (workdir / PID_FILE).exists()):
        assert time.monotonic() < deadline, "the child never started"
        time.sleep(0.02)
    task = int(task_pid.read_text())

    asked = {"action": "cancel", "requested_by": "cli:ops", "requested_at": "t", "source": "cli"}
    assert cancel_local_run(workdir, asked) == "terminated"
    runner.join(timeout=10)

    assert not runner.is_alive()
    [result] = results
    assert result.status == "cancelled"
    assert result.cancelled_by == asked  # the run reports who stopped it
    assert result.error is None
    assert not (workdir / PID_FILE).exists()
    deadline = time.monotonic() + 5
    while _alive(task):
        assert time.monotonic() < deadline, "the task process outlived the cancel"
        time.sleep(0.02)


def test_cancel_with_no_child_running_says_so(tmp_path: Path) -> None:
    with pytest.raises(LookupError, match="no local pipeline is running"):
        cancel_local_run(tmp_path)
    assert not (tmp_path / CANCEL_FILE).exists()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (ended, not yet reaped by its parent, which ended too) counts as gone
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split()[2] == "Z")
