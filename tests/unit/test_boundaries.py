"""The line between what ships inside a function and what only operators run.

`mlrelay` (shared/mlrelay/) is vendored into every Cloud Function; it must import neither the
operator tooling (`mlrelay_tools`) nor any service package, at module level or lazily inside a
function. Read from the source here (every import statement, wherever it is); proved by
importing every runtime module in a fresh interpreter in tests/integration/test_boundaries.py.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.helpers import NOT_IN_THE_RUNTIME, REPO, RUNTIME


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            found |= {
                node.value for name in NOT_IN_THE_RUNTIME if node.value.startswith(name + ".")
            }
    return found


def test_no_runtime_source_names_the_tooling_or_a_service() -> None:
    crossings = {
        f"{path.relative_to(REPO)}: {name}"
        for path in RUNTIME.rglob("*.py")
        for name in _imports(path)
        if name.split(".")[0] in NOT_IN_THE_RUNTIME
    }
    assert not crossings, crossings


def test_the_runtime_has_at_most_ten_top_level_modules() -> None:
    top = [p.name for p in RUNTIME.iterdir() if p.suffix == ".py"]
    assert len(top) <= 10, top
