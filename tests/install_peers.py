"""Install the BigQuery emulator (PyPI local-bigquery) into its own Python 3.13 venv.

It needs Python 3.13 and duckdb 1.5.5 with its extensions as wheels (the server has no network to
download them at run time). `.ci/run` calls this; the test fixture calls it too when the venv is
missing, so `pytest` works on a fresh machine. Run: `.venv/bin/python tests/install_peers.py`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VENV = Path(os.environ.get("MLRELAY_BIGQUERY_VENV", REPO / ".peers" / "bigquery-venv"))
BIGQUERY_SERVER = VENV / "bin" / "local-bigquery"
COMPLETE = VENV / "mlrelay-complete.txt"
DUCKDB = "1.5.5"
EXTENSIONS = ("ducklake", "icu", "httpfs", "spatial", "json", "parquet")
PACKAGES = [
    f"duckdb=={DUCKDB}",
    f"duckdb-extensions=={DUCKDB}",
    *(f"duckdb-extension-{name}=={DUCKDB}" for name in EXTENSIONS),
]


def find_python313() -> str:
    candidates = [os.environ.get("MLRELAY_PYTHON313", ""), "python3.13"]
    candidates += sorted(str(p) for p in Path.home().glob(".pyenv/versions/3.13*/bin/python3.13"))
    for candidate in filter(None, candidates):
        path = shutil.which(candidate) or candidate
        try:
            out = subprocess.run(
                [path, "--version"], capture_output=True, text=True, timeout=30, check=False
            )
        except OSError:
            continue
        if out.returncode == 0 and out.stdout.startswith("Python 3.13"):
            return path
    raise RuntimeError("no Python 3.13 found (set MLRELAY_PYTHON313 to its path)")


def install_bigquery_emulator() -> Path:
    """Create the venv (idempotent: a complete one is left alone). Returns the server path."""
    if COMPLETE.exists():
        return BIGQUERY_SERVER
    python = find_python313()
    shutil.rmtree(VENV, ignore_errors=True)  # a half-made one from an interrupted install
    VENV.parent.mkdir(parents=True, exist_ok=True)
    venv_python = str(VENV / "bin" / "python")
    pip = [venv_python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    steps = [
        [python, "-m", "venv", str(VENV)],
        [*pip, "local-bigquery==0.4.0"],
        # local-bigquery asks for duckdb 2, whose extensions are not on PyPI; 1.5.5's are, and
        # serve everything the tests use (pip prints a resolver complaint about it)
        [*pip, *PACKAGES],
        [
            venv_python,
            "-c",
            "from duckdb_extensions import import_extension as i\n"
            f"for name in {EXTENSIONS!r}: i(name)",
        ],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(step[:5])} failed: {done.stderr[-1500:]}")
    COMPLETE.write_text("local-bigquery==0.4.0 " + " ".join(PACKAGES) + "\n")
    return BIGQUERY_SERVER


if __name__ == "__main__":
    try:
        print(f"BigQuery emulator: {install_bigquery_emulator()}")
    except RuntimeError as exc:
        sys.exit(f"installing the BigQuery emulator failed: {exc}")
