"""The line between what ships inside a function and what only operators run, proved: every
runtime module imported in a fresh interpreter loads neither the operator tooling nor a service
(tests/unit/test_boundaries.py reads it from the source)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.helpers import NOT_IN_THE_RUNTIME, REPO, runtime_modules


def test_importing_every_runtime_module_loads_no_tooling_or_service() -> None:
    forbidden = NOT_IN_THE_RUNTIME
    script = (
        "import importlib, json, sys\n"
        f"for name in {runtime_modules()!r}: importlib.import_module(name)\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {forbidden!r})))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=REPO
    ).stdout
    assert json.loads(out) == []
