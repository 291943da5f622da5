"""`backend: local_job`: the pipeline's `job:` entry as a child process on this machine, with the
arguments and environment a Vertex AI custom job gets (mlrelay.registry.jobs), so the demo runs a
plain training script offline.

Like the local KFP backend, `start` waits for the child and returns the run's final outcome. The
run's folder (`<runs_dir>/<run_id>/`) holds the child's `stdout.log` and `stderr.log`, its process
id while it runs (`child.pid`), `result.json` once it has ended (its exit status), and `cancelled`
when a cancel command stopped it: `job_state` reads them, so the watchdog sees a child that died.

The job's output folder is `ports.store.uri(keys.job_output(run_id))`; for a local bucket (a
`file://` URI) the child gets the folder's plain path (`/…/bucket/jobs/<run_id>/`), which any
program can open, and the outcome names the `file://` URI.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlparse

import structlog

from mlrelay.errors import PermanentError
from mlrelay.ports.protocols import JobState, PipelineOutcome
from mlrelay.registry.jobs import (
    METRICS_FILE,
    MODEL_OUTPUT,
    JobEntry,
    job_environment,
    job_values,
    render_entry,
)
from mlrelay_deployer.kfp_local import modified_at, process_alive

log = structlog.get_logger()

STDOUT_FILE = "stdout.log"
STDERR_FILE = "stderr.log"
RESULT_FILE = "result.json"
PID_FILE = "child.pid"
CANCEL_FILE = "cancelled"
ERROR_TAIL_LINES = 20
_INTERPRETERS = ("python", "python3")


@dataclass(frozen=True)
class JobCommand:
    argv: list[str]
    env: dict[str, str]  # added to this process's environment


def local_path(uri: str) -> str:
    """A `file://` URI as the plain path a child can open (keeping a trailing `/`); any other
    URI as it is (a job handed `gs://` reads and writes it itself)."""
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        return uri
    return unquote(parsed.path)


def job_command(
    entry: JobEntry, arguments: Mapping[str, Any], output_dir: str, *, interpreter: str
) -> JobCommand:
    """The child's argv and its extra environment: the entry rendered with the run's values,
    `python`/`python3` as the first word replaced by `interpreter`."""
    values = job_values(arguments, output_dir)
    rendered = render_entry(entry, values)
    argv = [*rendered.command, *rendered.args]
    if argv[0] in _INTERPRETERS:
        argv[0] = interpreter
    return JobCommand(argv=argv, env={**job_environment(values), **rendered.env})


class LocalJobBackend:
    """The run's `job:` as a child process (cwd: the registry's folder), one per run id."""

    def __init__(
        self,
        runs_dir: Path,
        entry: JobEntry,
        *,
        registry_dir: Path,
        output_uri: Callable[[str], str],
    ) -> None:
        self.runs_dir = runs_dir
        self.entry = entry
        self.registry_dir = registry_dir
        self.output_uri = output_uri  # run id -> the run's output folder (a store URI)

    def completion_destination(self, run_id: str) -> str:
        return ""  # the job reports nothing itself: its exit status is its outcome

    def output_dir(self, run_id: str) -> str:
        uri = self.output_uri(run_id)
        return uri if uri.endswith("/") else f"{uri}/"

    def start(
        self,
        *,
        run_id: str,
        pipeline: str,
        template: str,
        parameters: dict[str, Any],
        labels: dict[str, str],
        announce: Callable[[dict[str, str]], None],
    ) -> PipelineOutcome:
        output_uri = self.output_dir(run_id)
        output_dir = local_path(output_uri)
        command = job_command(self.entry, parameters, output_dir, interpreter=sys.executable)
        workdir = self.runs_dir / run_id
        links = {
            "log": (workdir / STDERR_FILE).as_uri(),
            "stdout": (workdir / STDOUT_FILE).as_uri(),
            "output_dir": output_uri,
        }
        if output_dir != output_uri:  # a local folder: clear what an earlier attempt left
            Path(output_dir, MODEL_OUTPUT).mkdir(parents=True, exist_ok=True)
            Path(output_dir, METRICS_FILE).unlink(missing_ok=True)
        started = time.monotonic()
        exit_code = run_child(
            command, workdir, cwd=self.registry_dir, announce=lambda: announce(links)
        )
        duration = time.monotonic() - started
        common: dict[str, Any] = {"job_name": run_id, "links": links, "duration_seconds": duration}
        requested = _cancelled_by(workdir)
        if requested is not None:
            return PipelineOutcome(status="cancelled", details={"command": requested}, **common)
        details = {"argv": command.argv, "exit_code": exit_code}
        if exit_code != 0:
            error = f"the job exited with status {exit_code}\n{_tail(workdir / STDERR_FILE)}"
            return PipelineOutcome(status="failed", error=error.rstrip(), details=details, **common)
        try:
            metrics = read_metrics(output_dir)
        except PermanentError as error:
            return PipelineOutcome(status="failed", error=str(error), details=details, **common)
        return PipelineOutcome(
            status="succeeded",
            outputs={MODEL_OUTPUT: f"{output_uri}{MODEL_OUTPUT}/"},
            metrics=metrics,
            details=details,
            **common,
        )

    def cancel(self, *, run_id: str, job_name: str, requested: dict[str, str]) -> str:
        """Stop the run's child (SIGTERM to its process group): `start` then returns
        `cancelled`, with `requested` as its details' `command`."""
        workdir = self.runs_dir / run_id
        try:
            pid = int((workdir / PID_FILE).read_text())
        except (OSError, ValueError):
            raise PermanentError(
                "run_id",
                f"{run_id} is not running on this machine (its local job has ended)",
                "nothing to cancel; see the run's message for its outcome",
            ) from None
        (workdir / CANCEL_FILE).write_text(json.dumps(requested))
        with contextlib.suppress(ProcessLookupError):  # ended meanwhile: the mark tells `start`
            os.killpg(pid, signal.SIGTERM)
        return "terminated"

    def job_state(self, *, run_id: str, job_name: str) -> JobState | None:
        return local_job_state(self.runs_dir / run_id)


def run_child(
    command: JobCommand, workdir: Path, *, cwd: Path, announce: Callable[[], None]
) -> int:
    """Start the child in its own session (a cancel stops it and what it started), record its
    pid while it runs and its exit status once it has ended; returns the exit status."""
    workdir.mkdir(parents=True, exist_ok=True)
    for name in (RESULT_FILE, CANCEL_FILE):
        (workdir / name).unlink(missing_ok=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **command.env}
    with (workdir / STDOUT_FILE).open("wb") as out, (workdir / STDERR_FILE).open("wb") as err:
        child = subprocess.Popen(  # the registry's own entry, no shell
            command.argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            cwd=cwd,
            env=env,
            start_new_session=True,
        )
        (workdir / PID_FILE).write_text(str(child.pid))
        log.info("local_job_started", pid=child.pid, argv=command.argv)
        try:
            announce()
            exit_code = child.wait()
        finally:
            if child.poll() is None:  # the deployer itself is being stopped: so is the job
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
            (workdir / PID_FILE).unlink(missing_ok=True)
    (workdir / RESULT_FILE).write_text(json.dumps({"exit_code": exit_code}))
    log.info("local_job_ended", exit_code=exit_code)
    return exit_code


def read_metrics(output_dir: str) -> dict[str, float]:
    """The job's `metrics.json`: one flat JSON object of numbers (none written: no metrics)."""
    path = Path(output_dir, METRICS_FILE)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        raise PermanentError(
            METRICS_FILE, f"{path} is not JSON ({error})", "write one JSON object of numbers"
        ) from None
    if not isinstance(document, dict):
        raise PermanentError(
            METRICS_FILE, f"{path} holds a {type(document).__name__}", "write one JSON object"
        )
    wrong = [k for k, v in document.items() if not _number(v)]
    if wrong:
        raise PermanentError(
            f"{METRICS_FILE}.{wrong[0]}",
            f"{document[wrong[0]]!r} is not a number",
            'write each metric as a JSON number (e.g. "accuracy": 0.97)',
        )
    return {str(k): float(v) for k, v in document.items()}


def local_job_state(workdir: Path) -> JobState | None:
    """The child of the run in `workdir`: running (alive), its result, cancelled, or failed when
    it ended without a recorded exit status (the deployer that waited for it died). None when no
    job was ever started there."""
    stderr = workdir / STDERR_FILE
    if not stderr.exists():
        return None
    links = {"log": stderr.as_uri(), "stdout": (workdir / STDOUT_FILE).as_uri()}
    started = modified_at(workdir / PID_FILE) or modified_at(workdir / STDOUT_FILE)
    try:
        pid: int | None = int((workdir / PID_FILE).read_text())
    except (OSError, ValueError):
        pid = None
    if pid is not None and process_alive(pid):
        return JobState("running", "running", started_at=started, links=links)
    ended = modified_at(workdir / RESULT_FILE) or modified_at(stderr)
    if (workdir / CANCEL_FILE).exists():
        return JobState("cancelled", "cancelled", None, None, started, ended, links)
    try:
        exit_code = int(json.loads((workdir / RESULT_FILE).read_text())["exit_code"])
    except (OSError, ValueError, KeyError, TypeError):
        said = f"the local job's process ended without an exit status\n{_tail(stderr)}"
        return JobState("died", "failed", None, said.rstrip(), started, ended, links)
    status: Literal["succeeded", "failed"] = "succeeded" if exit_code == 0 else "failed"
    error = None if exit_code == 0 else f"exit status {exit_code}\n{_tail(stderr)}".rstrip()
    return JobState(f"exit {exit_code}", status, None, error, started, ended, links)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _cancelled_by(workdir: Path) -> dict[str, str] | None:
    try:
        requested = json.loads((workdir / CANCEL_FILE).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in dict(requested or {}).items()}


def _tail(path: Path, lines: int = ERROR_TAIL_LINES) -> str:
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            return "".join(deque(handle, maxlen=lines)).rstrip()
    except OSError as error:
        return f"(no stderr: {error})"
