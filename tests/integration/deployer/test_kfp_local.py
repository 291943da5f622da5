"""The local backend's runner (mlrelay_deployer.kfp_local): a pipeline that cannot start, or a
child that dies without a result, is a failed run with the log's tail, never an exception."""

import sys
from pathlib import Path

import pytest

from mlrelay_deployer.kfp_local import run_local_pipeline
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
