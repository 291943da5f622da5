"""Lint, types and declared dependencies are part of the test command, so CI and developers run
the same checks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO

BIN = Path(sys.executable).parent


@pytest.mark.parametrize(
    "command",
    [
        [str(BIN / "ruff"), "check", "."],
        [str(BIN / "ruff"), "format", "--check", "."],
        [str(BIN / "mypy")],
        # every third-party import is declared in pyproject.toml ([tool.deptry] there)
        [str(BIN / "deptry"), ".", "--no-ansi"],
    ],
    ids=["ruff-check", "ruff-format", "mypy", "deptry"],
)
def test_code_is_clean(command: list[str]) -> None:
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
