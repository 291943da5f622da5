"""Run a compiled pipeline locally with ``kfp.local``, isolated in a child process.

This module does not import kfp (it is slow to import); the child
(:mod:`mlrelay_deployer.kfp_local_child`) does. All kfp output goes to ``<workdir>/pipeline.log``.
"""

import json
import os
import signal
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from mlrelay.ports.protocols import JobState

LOG_FILE = "pipeline.log"
RESULT_FILE = "result.json"
LOG_TAIL_LINES = 20
PID_FILE = "child.pid"  # the running child's process id (its own session: the group's id)
CANCEL_FILE = "cancelled"  # written by `cancel_local_run` before it stops the child
_PACKAGE_PARENT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class LocalRunResult:
    status: Literal["succeeded", "failed", "cancelled"]
    run_dir: str  # the pipeline_root of this run
    outputs: dict[str, str]  # output name -> artifact URI (or scalar as string)
    metrics: dict[str, float]  # from the Metrics output's metadata
    failed_task: str | None
    error: str | None  # short error text (last lines of the failing task's error)
    log_path: str
    duration_seconds: float
    cancelled_by: dict[str, str] | None = None  # a cancelled run: who asked, when, from where


def _log_tail(log_path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        with log_path.open(encoding="utf-8", errors="replace") as handle:
            return "".join(deque(handle, maxlen=lines)).rstrip()
    except OSError as exc:
        return f"(no log: {exc})"


def _child_env() -> dict[str, str]:
    """Environment for the child: make ``mlrelay_deployer`` importable even if not installed, and
    keep the run offline.

    Each task starts with KFP's bootstrap ``pip install`` of its ``packages_to_install`` and kfp,
    into this very environment (``use_venv=False``). ``PIP_NO_INDEX`` lets pip only find them
    already installed: a requirement this environment does not satisfy fails the task, naming
    it, instead of downloading into the deployer's environment."""
    env = dict(os.environ)
    paths = [str(_PACKAGE_PARENT), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    env["PYTHONUNBUFFERED"] = "1"
    env["PIP_NO_INDEX"] = "1"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def _from_document(
    document: dict[str, Any], run_dir: Path, log_path: Path, duration: float
) -> LocalRunResult:
    status: Literal["succeeded", "failed"] = (
        "succeeded" if document.get("status") == "succeeded" else "failed"
    )
    error = document.get("error")
    if status == "failed" and not error:
        error = _log_tail(log_path)
    return LocalRunResult(
        status=status,
        run_dir=str(document.get("run_dir") or run_dir),
        outputs={str(k): str(v) for k, v in (document.get("outputs") or {}).items()},
        metrics={str(k): float(v) for k, v in (document.get("metrics") or {}).items()},
        failed_task=document.get("failed_task"),
        error=error,
        log_path=str(log_path),
        duration_seconds=duration,
    )


def run_local_pipeline(
    template: Path,
    parameters: dict[str, object],
    workdir: Path,
    *,
    timeout_seconds: float | None = None,
) -> LocalRunResult:
    """Run ``template`` (compiled pipeline YAML) with ``parameters``; artifacts go under workdir.

    Blocks until the child exits. Never raises for pipeline failures: they come back as
    ``status="failed"`` with the failing task and a short error.
    """
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / LOG_FILE
    result_path = workdir / RESULT_FILE
    run_dir = workdir / "root"
    result_path.unlink(missing_ok=True)
    (workdir / CANCEL_FILE).unlink(missing_ok=True)

    command = [
        sys.executable,
        "-m",
        "mlrelay_deployer.kfp_local_child",
        "--template",
        str(template.resolve()),
        "--parameters-json",
        json.dumps(parameters),
        "--workdir",
        str(workdir),
    ]
    started = time.monotonic()
    timed_out = False
    with log_path.open("wb") as log:
        # Own session, so a timeout can stop the child and the task processes it started.
        child = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=workdir,
            env=_child_env(),
            start_new_session=True,
        )
        pid_path = workdir / PID_FILE
        pid_path.write_text(str(child.pid))
        try:
            child.wait(timeout=timeout_seconds)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
        finally:
            pid_path.unlink(missing_ok=True)
    duration = time.monotonic() - started

    if (workdir / CANCEL_FILE).exists():
        try:
            requested = json.loads((workdir / CANCEL_FILE).read_text())
        except (OSError, ValueError):
            requested = {}
        return LocalRunResult(
            status="cancelled",
            run_dir=str(run_dir),
            outputs={},
            metrics={},
            failed_task=None,
            error=None,
            log_path=str(log_path),
            duration_seconds=duration,
            cancelled_by={str(k): str(v) for k, v in dict(requested or {}).items()},
        )

    if timed_out:
        return LocalRunResult(
            status="failed",
            run_dir=str(run_dir),
            outputs={},
            metrics={},
            failed_task=None,
            error=f"local pipeline timed out after {timeout_seconds}s\n{_log_tail(log_path)}",
            log_path=str(log_path),
            duration_seconds=duration,
        )
    try:
        document = json.loads(result_path.read_text(encoding="utf-8"))
        if not isinstance(document, dict):
            raise ValueError("result.json is not an object")
        return _from_document(document, run_dir, log_path, duration)
    except (OSError, ValueError, TypeError):
        return LocalRunResult(
            status="failed",
            run_dir=str(run_dir),
            outputs={},
            metrics={},
            failed_task=None,
            error=_log_tail(log_path),
            log_path=str(log_path),
            duration_seconds=duration,
        )


def cancel_local_run(workdir: Path, requested: dict[str, str] | None = None) -> str:
    """Stop the local run in `workdir`: mark it cancelled, then end its child and the task
    processes it started (SIGTERM to the child's process group). Returns `terminated`; raises
    LookupError when no child is running there (never started, or already finished)."""
    pid_path = workdir / PID_FILE
    try:
        pid = int(pid_path.read_text())
    except (OSError, ValueError):
        raise LookupError(f"no local pipeline is running in {workdir}") from None
    (workdir / CANCEL_FILE).write_text(json.dumps(requested or {}))
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:  # it ended meanwhile; the mark still tells the runner
        return "terminated"
    return "terminated"


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def modified_at(path: Path) -> datetime | None:
    try:
        return datetime.fromtimestamp(path.stat().st_mtime, UTC)
    except OSError:
        return None


def local_job_state(workdir: Path) -> JobState | None:
    """What the local run in `workdir` is now: running (its child is alive), its result, or
    failed when its child died without writing one (said so, with the log's last lines).
    None when no run was ever started there."""
    log_path, result_path = workdir / LOG_FILE, workdir / RESULT_FILE
    if not log_path.exists():
        return None
    started = modified_at(workdir / PID_FILE) or modified_at(log_path)
    links = {"run_dir": (workdir / "root").as_uri(), "log": log_path.as_uri()}
    try:
        pid: int | None = int((workdir / PID_FILE).read_text())
    except (OSError, ValueError):
        pid = None
    if pid is not None and process_alive(pid):
        return JobState("running", "running", started_at=started, links=links)
    ended = modified_at(result_path) or modified_at(log_path)
    if (workdir / CANCEL_FILE).exists():
        return JobState("cancelled", "cancelled", None, None, started, ended, links)
    try:
        document = json.loads(result_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        document = None
    if isinstance(document, dict):
        result = _from_document(document, workdir / "root", log_path, 0.0)
        return JobState(
            result.status, result.status, result.failed_task, result.error, started, ended, links
        )
    said = f"the local run's process ended without a result\n{_log_tail(log_path)}"
    return JobState("died", "failed", None, said, started, ended, links)
