"""services/deployer/main.py stays light: the function's doorway does not load the Vertex AI
client (it is imported when a Vertex pipeline is deployed)."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import REPO


def test_deployer_entry_point_does_not_import_the_vertex_client() -> None:
    probe = (
        "import sys; sys.path.insert(0, 'services/deployer'); import main; "
        "print(any(m.startswith('google.cloud.aiplatform') for m in sys.modules))"
    )
    completed = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert completed.stdout.strip() == "False"
