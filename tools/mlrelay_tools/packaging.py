"""`mlrelay package`: the exact source a Cloud Function deploy uploads, one per service.

Cloud Functions uploads one directory, so each package holds the service's `main.py` and code
package, the runtime package `mlrelay` vendored whole beside them (the operator tooling lives
in `mlrelay_tools`, which no function imports), the pipeline registry with the templates it
references, and a `requirements.txt` pinned to the versions this environment was tested with.
"""

from __future__ import annotations

import re
import shutil
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from mlrelay.config.functions import FUNCTIONS
from mlrelay.errors import ConfigurationError
from mlrelay.registry import load_registry

SERVICES = tuple(dict.fromkeys(spec.service_dir for spec in FUNCTIONS))
_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?")
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Package:
    service: str
    folder: Path
    archive: Path
    requirements: list[str]


def pinned_requirements(requirements_file: Path) -> list[str]:
    """Each requirement pinned to the version installed here (the one the tests ran with)."""
    pinned = []
    for line in requirements_file.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = _REQUIREMENT.match(line)
        if match is None:
            raise ConfigurationError(str(requirements_file), f"cannot read requirement {line!r}")
        name, extras = match.group(1), match.group(2) or ""
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            raise ConfigurationError(
                str(requirements_file),
                f"{name} is not installed here, so it cannot be pinned",
                "pip install -e '.[dev]' first",
            ) from None
        pinned.append(f"{name}{extras}=={version}")
    return pinned


def _copy_tree(source: Path, target: Path, excludes: tuple[str, ...] = ("__pycache__",)) -> None:
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(*excludes, "*.pyc"))


def _copy_registry(registry_file: Path, target: Path) -> None:
    """The registry and every local template it names, at the same relative paths."""
    registry = load_registry(registry_file)
    target.mkdir(parents=True)
    shutil.copy2(registry_file, target / "registry.yaml")
    base = registry_file.parent.resolve()
    for name, spec in registry.pipelines.items():
        if "://" in spec.template:
            continue
        source = Path(registry.template_location(name))
        try:
            relative = source.relative_to(base)
        except ValueError:
            raise ConfigurationError(
                f"pipelines.{name}.template",
                f"{source} is outside the registry's folder",
                "keep templates beside the registry",
            ) from None
        (target / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target / relative)


def _zip(folder: Path, archive: Path) -> None:
    """A reproducible zip: sorted entries, fixed timestamps (same input, same bytes)."""
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(path.relative_to(folder).as_posix(), _ZIP_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            out.writestr(info, path.read_bytes())


def package_service(service: str, repo: Path, registry_file: Path, out_dir: Path) -> Package:
    if service not in SERVICES:
        raise ConfigurationError(
            "SERVICE", f"{service!r} is not a service", f"use one of: {', '.join(SERVICES)}"
        )
    source = repo / "services" / service
    folder = out_dir / service
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    shutil.copy2(source / "main.py", folder / "main.py")
    _copy_tree(source / f"mlrelay_{service}", folder / f"mlrelay_{service}")
    _copy_tree(repo / "shared" / "mlrelay", folder / "mlrelay")
    _copy_registry(registry_file, folder / "registry")
    requirements = pinned_requirements(source / "requirements.txt")
    (folder / "requirements.txt").write_text(
        "# pinned by `mlrelay package` to the versions mlrelay was tested with\n"
        + "\n".join(requirements)
        + "\n"
    )
    archive = out_dir / f"{service}.zip"
    _zip(folder, archive)
    return Package(service, folder, archive, requirements)
