"""Fetch a compiled pipeline template from where the registry says it lives.

A local file, a `gs://` object, or an Artifact Registry KFP package
(`https://<region>-kfp.pkg.dev/<project>/<repo>/<package>/<tag or sha256:digest>`). A tag is
resolved to its version digest, and the run records the pinned URI, so a moved tag never changes
what an already submitted run used.
"""

from __future__ import annotations

import copy
import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from mlrelay.errors import ConfigurationError, TransientError

_AR = re.compile(
    r"^https://(?P<location>[a-z0-9-]+)-kfp\.pkg\.dev/(?P<project>[^/]+)/(?P<repo>[^/]+)/"
    r"(?P<package>[^/]+)/(?P<ref>[^/]+)$"
)
ARTIFACT_REGISTRY_API = "https://artifactregistry.googleapis.com/v1"


@dataclass(frozen=True)
class PipelineTemplate:
    location: str  # as the registry gives it
    pinned_uri: str  # what a run used: the same, or the digest-pinned Artifact Registry URI
    text: str
    sha256: str  # of the template text
    spec: dict[str, Any]  # the PipelineSpec document
    platform_spec: dict[str, Any]  # the optional second YAML document (Kubernetes settings)

    @property
    def registry_uri(self) -> str | None:
        """The Artifact Registry URI (Vertex's `template_uri`), None for files and gs://."""
        return self.pinned_uri if _AR.match(self.pinned_uri) else None

    @property
    def name(self) -> str:
        return str(self.spec.get("pipelineInfo", {}).get("name", ""))

    def input_parameters(self) -> dict[str, dict[str, Any]]:
        params = self.spec.get("root", {}).get("inputDefinitions", {}).get("parameters", {})
        return dict(params)


def parse_template(location: str, text: str, pinned_uri: str | None = None) -> PipelineTemplate:
    import yaml

    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise ConfigurationError(
            "template", f"{location} is not YAML: {exc}", "compile the pipeline again"
        ) from None
    if not docs or not isinstance(docs[0], dict) or "root" not in docs[0]:
        raise ConfigurationError(
            "template",
            f"{location} is not a compiled KFP pipeline (no `root`)",
            "point `template` at the YAML written by kfp's compiler",
        )
    platform = docs[1] if len(docs) > 1 and isinstance(docs[1], dict) else {}
    return PipelineTemplate(
        location=location,
        pinned_uri=pinned_uri or location,
        text=text,
        sha256=hashlib.sha256(text.encode()).hexdigest(),
        spec=docs[0],
        platform_spec=platform,
    )


def with_caching(spec: dict[str, Any], enable_caching: bool | None) -> dict[str, Any]:
    """A copy of the PipelineSpec with every task's cache switched on or off (None: as compiled),
    as the high-level SDK does for `enable_caching`."""
    if enable_caching is None:
        return spec
    spec = copy.deepcopy(spec)
    for component in [spec.get("root", {}), *(spec.get("components") or {}).values()]:
        for task in (component.get("dag", {}).get("tasks") or {}).values():
            task["cachingOptions"] = {"enableCache": enable_caching}
    return spec


def load_template(location: str) -> PipelineTemplate:
    """The template at `location` (an absolute path, `gs://...` or an Artifact Registry URI)."""
    if location.startswith("gs://"):
        return parse_template(location, _read_gcs(location))
    if _AR.match(location):
        pinned, text = _read_artifact_registry(location)
        return parse_template(location, text, pinned)
    if "://" in location and not location.startswith("file://"):
        raise ConfigurationError(
            "template",
            f"{location!r} is neither a file, gs:// nor an Artifact Registry KFP URI",
            "use a path, gs://bucket/pipeline.yaml or https://REGION-kfp.pkg.dev/P/REPO/PKG/TAG",
        )
    return _load_file(location.removeprefix("file://"), _mtime(location))


def _mtime(location: str) -> float:
    try:
        return Path(location.removeprefix("file://")).stat().st_mtime
    except OSError:
        return 0.0


@lru_cache(maxsize=32)
def _load_file(path: str, mtime: float) -> PipelineTemplate:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigurationError(
            "template",
            f"cannot read {path}: {exc.strerror}",
            "compile the pipeline or fix `template` in the registry",
        ) from None
    return parse_template(path, text)


def _read_gcs(uri: str) -> str:
    from google.api_core import exceptions
    from google.cloud import storage  # type: ignore[attr-defined,unused-ignore]

    bucket, _, name = uri.removeprefix("gs://").partition("/")
    try:
        return str(storage.Client().bucket(bucket).blob(name).download_as_text())
    except exceptions.NotFound:
        raise ConfigurationError(
            "template", f"{uri} does not exist", "upload the compiled pipeline or fix the URI"
        ) from None
    except (exceptions.TooManyRequests, exceptions.ServerError) as exc:
        raise TransientError(f"reading {uri}: {exc}") from exc


@dataclass(frozen=True)
class ArtifactRegistryAccess:
    """How to reach Artifact Registry: the API root, the KFP package host (None: the real
    `https://<region>-kfp.pkg.dev`), and an authorised `requests` session (None: ADC)."""

    api: str = ARTIFACT_REGISTRY_API
    package_host: str | None = None
    session: Any = None

    def authorised_session(self) -> Any:
        if self.session is not None:
            return self.session
        import google.auth
        from google.auth.transport.requests import AuthorizedSession

        credentials, _ = google.auth.default(
            scopes=["https://www.googleapis.com/auth/cloud-platform"]
        )
        return AuthorizedSession(credentials)  # type: ignore[no-untyped-call,unused-ignore]


_access = ArtifactRegistryAccess()
_versions: dict[str, str] = {}  # digest-pinned uri -> text (a version never changes)


def use_artifact_registry(access: ArtifactRegistryAccess | None) -> None:
    """Where Artifact Registry is (tests point it at a loopback server); None: the real one."""
    global _access
    _access = access or ArtifactRegistryAccess()
    _versions.clear()


def _read_artifact_registry(uri: str) -> tuple[str, str]:
    """(digest-pinned URI, template text); a tag is resolved through the Artifact Registry API.

    A tag is looked up every time (it may have moved); a version's text is kept, since a digest
    names one immutable version."""
    match = _AR.match(uri)
    assert match is not None
    session = _access.authorised_session()
    ref = match["ref"]
    base = uri.rsplit("/", 1)[0]
    if not ref.startswith("sha256:"):
        tag_url = (
            f"{_access.api}/projects/{match['project']}/locations/{match['location']}/"
            f"repositories/{match['repo']}/packages/{match['package']}/tags/{ref}"
        )
        tag = _checked(session.get(tag_url, timeout=30), uri).json()
        ref = str(tag["version"]).rsplit("/", 1)[-1]
    pinned = f"{base}/{ref}"
    if pinned in _versions:
        return pinned, _versions[pinned]
    download = pinned
    if _access.package_host:
        download = pinned.replace(f"https://{match['location']}-kfp.pkg.dev", _access.package_host)
    text = _checked(session.get(download, timeout=60), uri).text
    _versions[pinned] = text
    return pinned, text


def _checked(response: Any, uri: str) -> Any:
    if response.status_code == 429 or response.status_code >= 500:
        raise TransientError(f"Artifact Registry answered {response.status_code} for {uri}")
    if response.status_code >= 400:
        raise ConfigurationError(
            "template",
            f"Artifact Registry answered {response.status_code} for {uri}: {response.text[:300]}",
            "check the package, tag and the deployer's access to the repository",
        )
    return response
