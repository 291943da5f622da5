"""`mlrelay package`: the exact source a Cloud Function deploy uploads, one per service.

Cloud Functions uploads one directory, so each package holds the service's `main.py` and code
package, the runtime package `mlrelay` vendored whole beside them (the operator tooling lives
in `mlrelay_tools`, which no function imports), the pipeline registry with the templates it
references, and as its `requirements.txt` the service's committed lock (every package pinned with
its hashes, `mlrelay_tools.locks`): pip installs it in hash-checking mode, so every build of the
function installs the same files.
"""

from __future__ import annotations

import re
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

from mlrelay.errors import ConfigurationError
from mlrelay.registry import load_registry
from mlrelay_tools.locks import SERVICES as SERVICES  # the services, named once, in locks
from mlrelay_tools.locks import checked_lock

_PIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\[\],-]*==")
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Package:
    service: str
    folder: Path
    archive: Path
    requirements: list[str]


def locked_requirements(lock_text: str) -> list[str]:
    """The `name==version` pins of a lock (its hash and comment lines left out)."""
    return [line.split(" ", 1)[0] for line in lock_text.splitlines() if _PIN.match(line)]


def _copy_tree(source: Path, target: Path, excludes: tuple[str, ...] = ("__pycache__",)) -> None:
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(*excludes, "*.pyc"))


def _copy_registry(registry_file: Path, target: Path) -> None:
    """The registry and every local template it names, at the same relative paths."""
    registry = load_registry(registry_file)
    target.mkdir(parents=True)
    shutil.copy2(registry_file, target / "registry.yaml")
    base = registry_file.parent.resolve()
    for name, spec in registry.pipelines.items():
        if spec.template is None or "://" in spec.template:
            continue  # a job's command ships in its image
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
    lock = checked_lock(repo, service)  # a stale lock stops before anything is written
    source = repo / "services" / service
    folder = out_dir / service
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    shutil.copy2(source / "main.py", folder / "main.py")
    _copy_tree(source / f"mlrelay_{service}", folder / f"mlrelay_{service}")
    _copy_tree(repo / "shared" / "mlrelay", folder / "mlrelay")
    _copy_registry(registry_file, folder / "registry")
    (folder / "requirements.txt").write_text(lock)
    archive = out_dir / f"{service}.zip"
    _zip(folder, archive)
    return Package(service, folder, archive, locked_requirements(lock))
