"""`mlrelay package`: what a Cloud Function deploy uploads, self-contained and reproducible."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlrelay.errors import ConfigurationError
from mlrelay_tools.cli.main import cli
from mlrelay_tools.locks import lock_file
from mlrelay_tools.packaging import SERVICES, package_service
from tests.helpers import REGISTRY, REPO


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("functions")
    result = CliRunner().invoke(
        cli,
        ["package", "--all", "--out", str(out), "--registry", str(REGISTRY), "--repo", str(REPO)],
    )
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.parametrize("service", SERVICES)
def test_each_package_holds_its_service_the_library_and_the_registry(
    packages: Path, service: str
) -> None:
    names = set(zipfile.ZipFile(packages / f"{service}.zip").namelist())
    assert {
        "main.py",
        "requirements.txt",
        f"mlrelay_{service}/entry.py",
        "mlrelay/contracts.py",
        "mlrelay/stage/doorway.py",
        "registry/registry.yaml",
        "registry/penguins/penguins_pipeline.yaml",
    } <= names
    other = {f"mlrelay_{s}/entry.py" for s in SERVICES if s != service}
    assert not names & other  # only its own service
    assert not any(n.startswith("mlrelay_tools/") for n in names)  # tooling never ships
    runtime = {
        "mlrelay/" + p.relative_to(REPO / "shared" / "mlrelay").as_posix()
        for p in (REPO / "shared" / "mlrelay").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }
    assert {n for n in names if n.startswith("mlrelay/")} == runtime  # vendored whole
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)


@pytest.mark.parametrize("service", SERVICES)
def test_requirements_are_the_services_hashed_lock(packages: Path, service: str) -> None:
    shipped = (packages / service / "requirements.txt").read_text()
    assert shipped == lock_file(REPO, service).read_text()
    assert "--hash=sha256:" in shipped  # pip installs it in hash-checking mode


def test_packages_are_reproducible(packages: Path, tmp_path: Path) -> None:
    again = package_service("trigger", REPO, REGISTRY, tmp_path)
    assert again.archive.read_bytes() == (packages / "trigger.zip").read_bytes()


def test_unknown_service_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="'scheduler' is not a service"):
        package_service("scheduler", REPO, REGISTRY, tmp_path)
    result = CliRunner().invoke(cli, ["package"])
    assert result.exit_code == 2 and "name one SERVICE or pass --all" in result.output
