"""The penguins pipeline: compiled template is fresh, and it runs end to end with kfp.local."""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import palmerpenguins
import pyarrow.parquet as pq
import pytest

from mlrelay_deployer.kfp_local import LocalRunResult, run_local_pipeline
from mlrelay_deployer.kfp_local_child import find_failed_task, task_error_lines

REPO_ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = REPO_ROOT / "pipelines" / "penguins" / "penguins_pipeline.yaml"
COMPILE_SCRIPT = REPO_ROOT / "pipelines" / "penguins" / "compile.py"
PENGUINS_CSV = Path(palmerpenguins.__file__).parent / "data" / "penguins.csv"
PREPROCESS_TASK = "preprocess"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_snapshot(root: Path, run_id: str = "run-test-1") -> tuple[Path, str]:
    """Write a snapshot directory as mlrelay's snapshotter does; return (manifest, fingerprint)."""
    root.mkdir(parents=True, exist_ok=True)
    part = root / "part-0.parquet"
    duckdb.sql(  # paths are ours (package data and tmp_path), not user input
        f"COPY (SELECT * FROM read_csv('{PENGUINS_CSV}', nullstr='NA')) "  # noqa: S608
        f"TO '{part}' (FORMAT PARQUET)"
    )
    sha = _sha256(part)
    schema = [
        {"name": field.name, "type": str(field.type), "nullable": field.nullable}
        for field in pq.read_schema(part)
    ]
    fingerprint = hashlib.sha256(f"{run_id}:{sha}".encode()).hexdigest()
    manifest = {
        "schema_version": 1,
        "run_id": run_id,
        "row_count": pq.read_metadata(part).num_rows,
        "fingerprint": fingerprint,
        "files": [
            {
                "path": part.name,
                "uri": part.as_uri(),
                "size_bytes": part.stat().st_size,
                "sha256": sha,
                "crc32c": "",
            }
        ],
        "schema": schema,
    }
    manifest_path = root / "manifest.json"
    manifest_path.write_text(json.dumps(manifest, indent=2))
    return manifest_path, fingerprint


def _run(manifest: Path, fingerprint: str, workdir: Path) -> LocalRunResult:
    return run_local_pipeline(
        TEMPLATE,
        {
            "snapshot_manifest_uri": manifest.as_uri(),
            "snapshot_fingerprint": fingerprint,
            "run_id": "run-test-1",
            "n_estimators": 50,
        },
        workdir,
    )


@pytest.mark.pipeline
def test_pipeline_trains_an_accurate_model(tmp_path: Path) -> None:
    manifest, fingerprint = make_snapshot(tmp_path / "snapshot")

    result = _run(manifest, fingerprint, tmp_path / "run")

    assert result.status == "succeeded", result.error
    assert result.failed_task is None
    assert result.metrics["accuracy"] > 0.9
    assert result.metrics["f1_macro"] > 0.9
    assert result.metrics["n_test"] > 0
    assert result.metrics["n_train"] > result.metrics["n_test"]
    assert Path(result.outputs["model"]).is_file()
    assert Path(result.outputs["model"]).is_relative_to(result.run_dir)
    assert Path(result.log_path).is_file()
    assert result.duration_seconds > 0


@pytest.mark.pipeline
def test_tampered_snapshot_fails_in_preprocess(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    manifest, fingerprint = make_snapshot(tmp_path / "snapshot")
    with (tmp_path / "snapshot" / "part-0.parquet").open("ab") as handle:
        handle.write(b"tampered")

    result = _run(manifest, fingerprint, tmp_path / "run")

    assert capfd.readouterr() == ("", "")  # everything went to the log file
    assert "Inner task failed" in Path(result.log_path).read_text()
    assert result.status == "failed"
    assert result.failed_task == PREPROCESS_TASK
    assert result.error is not None
    assert "checksum" in result.error
    assert result.metrics == {}


@pytest.mark.pipeline
def test_fingerprint_mismatch_fails_in_preprocess(tmp_path: Path) -> None:
    manifest, _ = make_snapshot(tmp_path / "snapshot")

    result = _run(manifest, "0" * 64, tmp_path / "run")

    assert result.status == "failed"
    assert result.failed_task == PREPROCESS_TASK
    assert result.error is not None
    assert "fingerprint mismatch" in result.error


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

    result = run_local_pipeline(TEMPLATE, {}, tmp_path / "run")

    assert result.status == "failed"
    assert result.error is not None
    assert result.error.splitlines() == [f"line {i}" for i in range(11, 31)]


def test_compiled_template_is_up_to_date() -> None:
    env = {k: v for k, v in os.environ.items() if k != "MLRELAY_PIPELINE_BASE_IMAGE"}
    completed = subprocess.run(
        [sys.executable, str(COMPILE_SCRIPT.relative_to(REPO_ROOT)), "--check"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr


def test_failed_task_and_error_are_parsed_from_kfp_output() -> None:
    log = "\n".join(
        [
            "17:22:24.229 - INFO - Executing task \x1b[96m'preprocess'\x1b[0m",
            "17:22:24.229 - INFO - Streamed logs:",
            "",
            "    [KFP Executor 2026-11-25 17:22:24,842 INFO]: Got executor_input:",
            "    Traceback (most recent call last):",
            '      File "/x/executor.py", line 453, in execute',
            "        result = self.func(**func_kwargs)",
            "                 ^^^^^^^^^^^^^^^^^^^^^^^^",
            '      File "/tmp/t/ephemeral_component.py", line 65, in preprocess',
            "        raise ValueError(",
            "    ValueError: sha256 checksum mismatch for snapshot file 'part-0.parquet'",
            "",
            "17:22:26.707 - ERROR - Task \x1b[96m'preprocess'\x1b[0m finished with status "
            "\x1b[91mFAILURE\x1b[0m",
        ]
    )
    exception = (
        "RuntimeError: Pipeline \x1b[95m'penguins-training'\x1b[0m finished with status "
        "FAILURE. Inner task failed: \x1b[96m'preprocess'\x1b[0m."
    )

    assert find_failed_task(exception, log) == "preprocess"
    assert find_failed_task("boom", log) == "preprocess"
    assert task_error_lines(log, "preprocess") == [
        'File "/tmp/t/ephemeral_component.py", line 65, in preprocess',
        "ValueError: sha256 checksum mismatch for snapshot file 'part-0.parquet'",
    ]
