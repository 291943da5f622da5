"""The line between what ships inside a function and what only operators run.

`mlrelay` (shared/mlrelay/) is vendored into every Cloud Function; it must import neither the
operator tooling (`mlrelay_tools`) nor any service package, at module level or lazily inside a
function. Read from the source (every import statement, wherever it is), then proved by
importing every runtime module in a fresh interpreter.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

from .helpers import REPO

RUNTIME = REPO / "shared" / "mlrelay"
FORBIDDEN = (
    "mlrelay_tools",
    "mlrelay_trigger",
    "mlrelay_snapshotter",
    "mlrelay_deployer",
    "mlrelay_notifier",
)


def _modules() -> list[str]:
    return sorted(
        ".".join(p.relative_to(RUNTIME.parent).with_suffix("").parts).removesuffix(".__init__")
        for p in RUNTIME.rglob("*.py")
    )


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            found |= {node.value for name in FORBIDDEN if node.value.startswith(name + ".")}
    return found


def test_no_runtime_source_names_the_tooling_or_a_service() -> None:
    crossings = {
        f"{path.relative_to(REPO)}: {name}"
        for path in RUNTIME.rglob("*.py")
        for name in _imports(path)
        if name.split(".")[0] in FORBIDDEN
    }
    assert not crossings, crossings


def test_importing_every_runtime_module_loads_no_tooling_or_service() -> None:
    script = (
        "import importlib, json, sys\n"
        f"for name in {_modules()!r}: importlib.import_module(name)\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=REPO
    ).stdout
    assert json.loads(out) == []


def test_the_runtime_has_at_most_ten_top_level_modules() -> None:
    top = [p.name for p in RUNTIME.iterdir() if p.suffix == ".py"]
    assert len(top) <= 10, top
