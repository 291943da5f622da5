"""cloudbuild/: the build runs the scripts a developer runs, and each script is valid bash."""

from __future__ import annotations

import re
import subprocess

import yaml

from tests.helpers import REPO


def test_cloud_build_runs_the_same_scripts_a_developer_runs() -> None:
    steps_dir = REPO / "cloudbuild" / "steps"
    for config in sorted((REPO / "cloudbuild").glob("*.yaml")):
        build = yaml.safe_load(config.read_text())
        for step in build["steps"]:
            command = " ".join(step.get("args", []))
            for script in re.findall(r"cloudbuild/steps/([a-z_]+\.sh)", command):
                assert (steps_dir / script).is_file(), (config.name, script)
    assert "bash .ci/run" in (steps_dir / "checks.sh").read_text()
    assert "mlrelay package --all" in (steps_dir / "package.sh").read_text()
    for script in steps_dir.glob("*.sh"):
        subprocess.run(["bash", "-n", str(script)], check=True)
