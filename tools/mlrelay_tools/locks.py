"""Each function's lock: `services/<name>/requirements.lock`, every package pinned with its hashes.

The lock is resolved from the service's `requirements.txt` by uv for every platform and Python
3.11 and later (Cloud Functions runs python312 on linux x86_64), committed, and shipped by
`mlrelay package` as the function's `requirements.txt`: pip installs a hashed requirements file in
hash-checking mode, so a Cloud Functions build months later installs exactly what the packaged
function tests installed. Its first line records the sha256 of the `requirements.txt` it was
made from, so a stale lock is found without a network (`stale_lock`).

Regenerate after changing a service's requirements.txt: `python -m mlrelay_tools.locks`.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
from pathlib import Path

from mlrelay.config.functions import FUNCTIONS, HTTP_FUNCTIONS
from mlrelay.errors import ConfigurationError

SERVICES = tuple(
    dict.fromkeys(
        [spec.service_dir for spec in FUNCTIONS] + [spec.service_dir for spec in HTTP_FUNCTIONS]
    )
)
LOCK_NAME = "requirements.lock"
REGENERATE = "python -m mlrelay_tools.locks"
# the oldest Python the lock must install on (requires-python); --universal covers the newer ones
LOCK_PYTHON = "3.11"
_DIGEST_PREFIX = "# made from requirements.txt sha256="


def lock_file(repo: Path, service: str) -> Path:
    return repo / "services" / service / LOCK_NAME


def _input_digest(requirements: Path) -> str:
    return hashlib.sha256(requirements.read_bytes()).hexdigest()


def stale_lock(repo: Path, service: str) -> str | None:
    """Why the service's lock cannot be shipped, or None when it matches its requirements.txt."""
    lock = lock_file(repo, service)
    if not lock.is_file():
        return f"{lock} is missing"
    first = lock.read_text().split("\n", 1)[0]
    recorded = first.removeprefix(_DIGEST_PREFIX) if first.startswith(_DIGEST_PREFIX) else None
    if recorded != _input_digest(lock.parent / "requirements.txt"):
        return f"{lock} was made from another version of {lock.parent / 'requirements.txt'}"
    return None


def checked_lock(repo: Path, service: str) -> str:
    """The lock's text, or a ConfigurationError saying how to regenerate it."""
    problem = stale_lock(repo, service)
    if problem is not None:
        raise ConfigurationError(f"services/{service}/{LOCK_NAME}", problem, f"run `{REGENERATE}`")
    return lock_file(repo, service).read_text()


def write_lock(repo: Path, service: str, uv: str) -> Path:
    """Resolve the service's requirements.txt with uv (needs the package index) into its lock."""
    requirements = repo / "services" / service / "requirements.txt"
    result = subprocess.run(
        [
            uv,
            "pip",
            "compile",
            str(requirements),
            "--generate-hashes",
            "--universal",
            "--python-version",
            LOCK_PYTHON,
            "--no-header",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise ConfigurationError(str(requirements), f"uv cannot resolve it: {result.stderr}")
    lock = lock_file(repo, service)
    lock.write_text(
        f"{_DIGEST_PREFIX}{_input_digest(requirements)}\n"
        f"# every package of the {service} function, with hashes; regenerate: `{REGENERATE}`\n"
        + result.stdout
    )
    return lock


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("services", nargs="*", help=f"default: all of {', '.join(SERVICES)}")
    parser.add_argument("--repo", type=Path, default=Path.cwd())
    parser.add_argument("--uv", default=str(Path(sys.executable).parent / "uv"))
    args = parser.parse_args(argv)
    for service in args.services or SERVICES:
        if service not in SERVICES:
            parser.error(f"{service!r} is not a service; use one of: {', '.join(SERVICES)}")
        print(write_lock(args.repo, service, args.uv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
