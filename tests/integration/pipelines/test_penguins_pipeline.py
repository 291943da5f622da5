"""The penguins pipeline: compiled template is fresh, and it runs end to end with kfp.local."""

import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from mlrelay_deployer.kfp_local import LocalRunResult, run_local_pipeline
from tests.helpers import PENGUINS_TEMPLATE, REPO
from tests.integration.penguins_snapshot import make_snapshot

COMPILE_SCRIPT = REPO / "pipelines" / "penguins" / "compile.py"
PREPROCESS_TASK = "preprocess"


def _run(manifest: Path, fingerprint: str, workdir: Path) -> LocalRunResult:
    return run_local_pipeline(
        PENGUINS_TEMPLATE,
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


def test_compiled_template_is_up_to_date() -> None:
    env = {k: v for k, v in os.environ.items() if k != "MLRELAY_PIPELINE_BASE_IMAGE"}
    completed = subprocess.run(
        [sys.executable, str(COMPILE_SCRIPT.relative_to(REPO)), "--check"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr


def test_compile_refuses_a_template_whose_steps_lack_their_imports(tmp_path: Path) -> None:
    source = (REPO / "pipelines" / "penguins" / "pipeline.py").read_text()
    declared = next(line for line in source.splitlines() if line.startswith("PACKAGES: list[str]"))
    without_packages = tmp_path / "pipeline.py"
    without_packages.write_text(source.replace(declared, "PACKAGES: list[str] = []"))
    compile_pipeline = runpy.run_path(str(COMPILE_SCRIPT))["compile_pipeline"]

    with pytest.raises(SystemExit) as refused:
        compile_pipeline(tmp_path / "out.yaml", pipeline_file=without_packages)

    assert "exec-preprocess (preprocess) imports pandas, pyarrow, sklearn" in str(refused.value)
    assert not (tmp_path / "out.yaml").exists()
