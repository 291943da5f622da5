"""Each function's committed lock matches its requirements.txt and pins every package with
hashes; `mlrelay package` refuses a stale one (no network: the lock records its input's digest)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from mlrelay.errors import ConfigurationError
from mlrelay_tools.locks import SERVICES, lock_file, stale_lock
from mlrelay_tools.packaging import package_service
from tests.helpers import REGISTRY, REPO


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked_packages(text: str) -> dict[str, list[str]]:
    """Each pinned package of a lock with the hash lines that follow it."""
    packages: dict[str, list[str]] = {}
    current = ""
    for line in text.splitlines():
        if line and not line.startswith((" ", "#")):
            current = line.split(" ", 1)[0]
            packages[current] = []
        elif line.strip().startswith("--hash=sha256:"):
            packages[current].append(line.strip())
    return packages


@pytest.mark.parametrize("service", SERVICES)
def test_each_lock_was_made_from_its_services_requirements(service: str) -> None:
    assert stale_lock(REPO, service) is None, "regenerate: python -m mlrelay_tools.locks"


@pytest.mark.parametrize("service", SERVICES)
def test_each_lock_pins_every_package_with_hashes(service: str) -> None:
    packages = locked_packages(lock_file(REPO, service).read_text())
    assert "functions-framework==3.10.2" in packages
    assert all("==" in pin for pin in packages)
    assert all(packages.values()), [pin for pin, hashes in packages.items() if not hashes]
    wanted = {
        canonical(re.split(r"[<>=\[ ]", line.split("#", 1)[0].strip(), maxsplit=1)[0])
        for line in (REPO / "services" / service / "requirements.txt").read_text().splitlines()
    } - {""}
    assert wanted <= {canonical(pin.split("==")[0]) for pin in packages}


def test_a_stale_lock_stops_packaging_and_says_how_to_regenerate(tmp_path: Path) -> None:
    service = tmp_path / "repo" / "services" / "trigger"
    service.mkdir(parents=True)
    shutil.copy2(lock_file(REPO, "trigger"), service / "requirements.lock")
    requirements = (REPO / "services" / "trigger" / "requirements.txt").read_text()
    (service / "requirements.txt").write_text(requirements + "sqlglot>=26\n")
    with pytest.raises(ConfigurationError) as raised:
        package_service("trigger", tmp_path / "repo", REGISTRY, tmp_path / "out")
    message = str(raised.value)
    assert "services/trigger/requirements.lock" in message
    assert "python -m mlrelay_tools.locks" in message
    assert not (tmp_path / "out").exists()
