"""`terraform fmt` over infra/: the committed files are in Terraform's canonical layout.

fmt needs no provider registry, so it runs here although validate and plan cannot. With CI=true
a missing terraform binary fails the run, as a missing emulator does; elsewhere it skips."""

from __future__ import annotations

import shutil
import subprocess

from tests.helpers import REPO
from tests.integration.peers import missing_peer


def test_terraform_files_are_formatted() -> None:
    terraform = shutil.which("terraform")
    if terraform is None:
        missing_peer("terraform (for `terraform fmt -check`)")
        return
    result = subprocess.run(
        [terraform, "fmt", "-check", "-recursive", "-diff", "infra"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, (
        "run `terraform fmt -recursive infra`; unformatted:\n" + result.stdout
    )
