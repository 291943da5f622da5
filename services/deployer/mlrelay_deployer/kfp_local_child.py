"""Child process that runs one compiled pipeline with ``kfp.local`` and writes ``result.json``.

Started by :func:`mlrelay_deployer.kfp_local.run_local_pipeline`; its stdout and stderr go to
``<workdir>/pipeline.log``. Usage::

    python -m mlrelay_deployer.kfp_local_child --template T --parameters-json J --workdir W
"""

import argparse
import io
import json
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

RESULT_FILE = "result.json"
ERROR_LINES = 8

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_INNER_FAILED = re.compile(r"Inner task failed:\s*'([^']+)'")
_TASK_FAILED = re.compile(r"Task '([^']+)' finished with status FAILURE")


class _Tee(io.TextIOBase):
    """Write-through text stream that also keeps a copy of everything written."""

    def __init__(self, target: TextIO) -> None:
        self._target = target
        self._copy = io.StringIO()

    def write(self, text: str) -> int:
        self._target.write(text)
        self._copy.write(text)
        return len(text)

    def flush(self) -> None:
        self._target.flush()

    def getvalue(self) -> str:
        return self._copy.getvalue()


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def find_failed_task(exception_text: str, log_text: str) -> str | None:
    """Name of the innermost failed task, from kfp.local's exception text or else its log."""
    match = _INNER_FAILED.search(strip_ansi(exception_text))
    if match:
        return match.group(1)
    failed = _TASK_FAILED.findall(strip_ansi(log_text))
    return failed[-1] if failed else None


def task_error_lines(log_text: str, task: str, limit: int = ERROR_LINES) -> list[str]:
    """Short error for ``task``: the last traceback's innermost frame and exception lines.

    Falls back to the last non-empty lines the task printed when there is no traceback.
    """
    lines = strip_ansi(log_text).splitlines()
    start, end = 0, len(lines)
    for index, line in enumerate(lines):
        if f"Executing task '{task}'" in line:
            start, end = index + 1, len(lines)
        elif f"Task '{task}' finished with status FAILURE" in line:
            end = index
    section = [line.rstrip() for line in lines[start:end] if line.strip()]
    starts = [i for i, line in enumerate(section) if line.lstrip().startswith("Traceback (")]
    if not starts:
        return [line.strip() for line in section[-limit:]]
    traceback = section[starts[-1] :]
    indent = len(traceback[0]) - len(traceback[0].lstrip())
    frames = [line.strip() for line in traceback if line.lstrip().startswith('File "')]
    body = next(
        (i for i, line in enumerate(traceback[1:], 1) if len(line) - len(line.lstrip()) <= indent),
        len(traceback),
    )
    exception = [line.strip() for line in traceback[body:]]
    return (frames[-1:] + exception)[:limit]


def _artifact_fields(value: Any) -> tuple[str, dict[str, Any]] | None:
    """(uri, metadata) when ``value`` is a kfp artifact, else None (duck-typed: no kfp import)."""
    uri = getattr(value, "uri", None)
    metadata = getattr(value, "metadata", None)
    if isinstance(uri, str) and isinstance(metadata, dict):
        return uri, metadata
    return None


def collect_outputs(outputs: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, float]]:
    """Map pipeline outputs to URIs (or scalars as strings) and gather Metrics values."""
    from kfp import dsl

    uris: dict[str, str] = {}
    metrics: dict[str, float] = {}
    for name, value in outputs.items():
        fields = _artifact_fields(value)
        if fields is None:
            uris[name] = value if isinstance(value, str) else json.dumps(value)
            continue
        uris[name] = fields[0]
        if isinstance(value, dsl.Metrics):
            for key, metric in fields[1].items():
                if isinstance(metric, int | float) and not isinstance(metric, bool):
                    metrics[key] = float(metric)
    return uris, metrics


def _task_components(spec: Mapping[str, Any]) -> dict[str, str]:
    """Task name -> component name, over the root DAG and every nested DAG (exit handlers...)."""
    dags = [spec.get("root", {}).get("dag", {})]
    dags += [c.get("dag", {}) for c in (spec.get("components") or {}).values()]
    return {
        name: task.get("componentRef", {}).get("name", "")
        for dag in dags
        for name, task in (dag.get("tasks") or {}).items()
    }


def collect_task_outputs(
    spec: Mapping[str, Any], run_dir: Path
) -> tuple[dict[str, str], dict[str, float]]:
    """Output artifacts of every task of the newest run under ``run_dir`` (from each task's
    ``executor_output.json``), and the values of its Metrics artifacts.

    A pipeline whose tasks sit in a ``dsl.ExitHandler`` cannot return pipeline outputs, so this
    is how the local runner still reports the model and the metrics.
    """
    runs = sorted((p for p in run_dir.glob("*") if p.is_dir()), key=lambda p: p.stat().st_mtime)
    if not runs:
        return {}, {}
    components = spec.get("components") or {}
    task_components = _task_components(spec)
    uris: dict[str, str] = {}
    metrics: dict[str, float] = {}
    for output_file in sorted(runs[-1].glob("*/executor_output.json")):
        task = output_file.parent.name
        definitions = (
            components.get(task_components.get(task, ""), {})
            .get("outputDefinitions", {})
            .get("artifacts", {})
        )
        document = json.loads(output_file.read_text())
        for name, listing in (document.get("artifacts") or {}).items():
            for artifact in listing.get("artifacts") or []:
                key = name if name not in uris else f"{task}.{name}"
                uris[key] = str(artifact.get("uri", ""))
                kind = definitions.get(name, {}).get("artifactType", {}).get("schemaTitle")
                if kind == "system.Metrics":
                    for metric, value in (artifact.get("metadata") or {}).items():
                        if isinstance(value, int | float) and not isinstance(value, bool):
                            metrics[metric] = float(value)
    return uris, metrics


def _task_outputs(task: Any) -> dict[str, Any]:
    outputs = getattr(task, "outputs", None)
    if isinstance(outputs, Mapping):
        return dict(outputs)
    return {}


def run(template: Path, parameters: dict[str, Any], workdir: Path, log: _Tee) -> dict[str, Any]:
    """Run the pipeline and return the result document (never raises for pipeline failures)."""
    run_dir = workdir / "root"
    result: dict[str, Any] = {
        "status": "failed",
        "run_dir": str(run_dir),
        "outputs": {},
        "metrics": {},
        "failed_task": None,
        "error": None,
    }
    try:
        from kfp import components, local

        local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(run_dir))
        pipeline = components.load_component_from_file(str(template))
        task = pipeline(**parameters)
        outputs, metrics = collect_outputs(_task_outputs(task))
        if not outputs:
            outputs, metrics = collect_task_outputs(_template_spec(template), run_dir)
    except Exception as exc:  # kfp.local raises RuntimeError for a failed task
        sys.stdout.flush()
        exception_text = strip_ansi(f"{type(exc).__name__}: {exc}")
        failed_task = find_failed_task(exception_text, log.getvalue())
        lines = task_error_lines(log.getvalue(), failed_task) if failed_task else []
        result["failed_task"] = failed_task
        result["error"] = "\n".join(lines) if lines else exception_text
        print(f"mlrelay: pipeline failed: {exception_text}", file=sys.stderr)
        return result
    result.update(status="succeeded", outputs=outputs, metrics=metrics)
    return result


def _template_spec(template: Path) -> dict[str, Any]:
    import yaml

    spec = next(yaml.safe_load_all(template.read_text()), None)
    return spec if isinstance(spec, dict) else {}


def write_result(workdir: Path, result: Mapping[str, Any]) -> Path:
    """Write ``result.json`` atomically so the parent never reads half a file."""
    target = workdir / RESULT_FILE
    partial = target.with_suffix(".json.partial")
    partial.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    partial.replace(target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run a compiled pipeline with kfp.local.")
    parser.add_argument("--template", type=Path, required=True)
    parser.add_argument("--parameters-json", required=True, help="pipeline arguments as JSON")
    parser.add_argument("--workdir", type=Path, required=True)
    args = parser.parse_args(argv)

    workdir: Path = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    parameters = json.loads(args.parameters_json)
    if not isinstance(parameters, dict):
        parser.error("--parameters-json must be a JSON object")

    original_stdout = sys.stdout
    tee = _Tee(original_stdout)
    sys.stdout = tee
    try:
        result = run(args.template.resolve(), parameters, workdir, tee)
    finally:
        sys.stdout = original_stdout
        sys.stdout.flush()
    write_result(workdir, result)
    return 0 if result["status"] == "succeeded" else 1


if __name__ == "__main__":
    sys.exit(main())
