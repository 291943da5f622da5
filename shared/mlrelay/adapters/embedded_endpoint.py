"""The embedded model registry and endpoint (a `ModelEndpoint` on files under `$MLRELAY_HOME`),
so the champion / challenger cycle runs on one machine; `mlrelay predict` serves its split.

```
models/<model>/versions.json            run id -> version id ("1", "2", ...: one per run)
models/<model>/<version>/               the run's model files (model.pkl or model.joblib)
models/<model>/<version>/version.json   its run, source artifact and labels
endpoints/<endpoint>.json               the deployed models and the traffic split
```

Every write goes to a temporary file renamed into place, under a lock file (`.lock` beside it),
so a reader never sees half a file and two processes never lose each other's update. The traffic
rules are Vertex AI's: percentages of deployed models only, summing to 100 while any is deployed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from mlrelay.errors import PermanentError
from mlrelay.ports.protocols import NEW_DEPLOYMENT, DeployedModel, EndpointState, ModelVersion
from mlrelay.registry.specs import PromotionSpec

MODELS = "models"
ENDPOINTS = "endpoints"
MODEL_FILES = ("model.pkl", "model.joblib")  # what Vertex AI's scikit-learn container loads
_VERSIONS = "versions.json"
_VERSION = "version.json"


def endpoint_file(home: Path, endpoint: str) -> Path:
    return home / ENDPOINTS / f"{endpoint.replace('/', '_')}.json"


def read_endpoint(home: Path, endpoint: str) -> EndpointState | None:
    """The endpoint's deployed models and split; None when nothing was ever deployed to it."""
    try:
        document = json.loads(endpoint_file(home, endpoint).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    deployed = tuple(
        DeployedModel(id=d["id"], model=d["model"], run_id=d.get("run_id"))
        for d in document.get("deployed", [])
    )
    traffic = {str(k): int(v) for k, v in document.get("traffic", {}).items()}
    return EndpointState(endpoint=endpoint, deployed=deployed, traffic=traffic)


def model_file(home: Path, model_name: str) -> Path:
    """The file to load for a ModelVersion.name (`<model>@<version>`)."""
    model, _, version = model_name.partition("@")
    folder = home / MODELS / model / version
    for name in MODEL_FILES:
        if (folder / name).is_file():
            return folder / name
    raise PermanentError(
        "model",
        f"{model_name} has no {' or '.join(MODEL_FILES)} in {folder}",
        "upload the run's model again (its promotion does it)",
    )


class EmbeddedEndpoint:
    """`promotion.model`'s versions and `promotion.endpoint`'s split, as files under `home`."""

    def __init__(self, home: Path, promotion: PromotionSpec) -> None:
        # absolute: a version's URI is a file:// URI, and MLRELAY_HOME defaults to `.mlrelay`
        home = home.resolve()
        self.home = home
        self.model = promotion.model
        self.endpoint = promotion.endpoint
        self.models_dir = home / MODELS / promotion.model
        self.file = endpoint_file(home, promotion.endpoint)

    def upload(self, *, run_id: str, artifact_uri: str, labels: dict[str, str]) -> ModelVersion:
        source = _local(artifact_uri)
        with _locked(self.models_dir / _VERSIONS):
            versions: dict[str, str] = _read_json(self.models_dir / _VERSIONS, {})
            version_id = versions.get(run_id)
            if version_id is None:  # a new version; a repeat finds the one it made
                version_id = str(max((int(v) for v in versions.values()), default=0) + 1)
                self._copy(source, version_id, run_id, artifact_uri, labels)
                _write_json(self.models_dir / _VERSIONS, {**versions, run_id: version_id})
        return self._version(version_id, run_id, artifact_uri)

    def state(self) -> EndpointState:
        return read_endpoint(self.home, self.endpoint) or EndpointState(self.endpoint, (), {})

    def deploy(self, *, version: ModelVersion, traffic: dict[str, int]) -> EndpointState:
        with _locked(self.file):
            current = self.state()
            serving = [d for d in current.deployed if d.model == version.name]
            deployed = list(current.deployed)
            if serving:
                new_id = serving[0].id
            else:
                new_id = f"{self.model}-{version.version_id}"
                deployed.append(DeployedModel(new_id, version.name, version.run_id))
            split = {new_id if k == NEW_DEPLOYMENT else k: v for k, v in traffic.items()}
            return self._save(deployed, split)

    def set_traffic(self, traffic: dict[str, int]) -> EndpointState:
        with _locked(self.file):
            return self._save(list(self.state().deployed), dict(traffic))

    def undeploy(self, *, deployed_model_id: str, traffic: dict[str, int]) -> EndpointState:
        with _locked(self.file):
            current = self.state()
            remaining = [d for d in current.deployed if d.id != deployed_model_id]
            split = dict(traffic)
            if not traffic:  # as Vertex AI: the split stays, less the model (if it had none)
                split = {k: v for k, v in current.traffic.items() if k != deployed_model_id}
            return self._save(remaining, split)

    def _save(self, deployed: list[DeployedModel], traffic: dict[str, int]) -> EndpointState:
        traffic = check_traffic(traffic, [d.id for d in deployed])
        document = {
            "endpoint": self.endpoint,
            "deployed": [{"id": d.id, "model": d.model, "run_id": d.run_id} for d in deployed],
            "traffic": traffic,
        }
        _write_json(self.file, document)
        return EndpointState(self.endpoint, tuple(deployed), traffic)

    def _copy(
        self, source: Path, version_id: str, run_id: str, artifact_uri: str, labels: dict[str, str]
    ) -> None:
        folder = self.models_dir / version_id
        staging = Path(tempfile.mkdtemp(dir=self.models_dir, prefix=".upload-"))
        try:
            if source.is_dir():
                found = [name for name in MODEL_FILES if (source / name).is_file()]
                if not found:
                    raise PermanentError(
                        "artifact_uri",
                        f"{artifact_uri} holds no {' or '.join(MODEL_FILES)}",
                        "write the model as model.pkl (a pickle) or model.joblib in $AIP_MODEL_DIR",
                    )
                shutil.copytree(source, staging, dirs_exist_ok=True)
            elif source.is_file():  # one pickle file, as a KFP Model artifact
                shutil.copyfile(source, staging / MODEL_FILES[0])
            else:
                raise PermanentError(
                    "artifact_uri",
                    f"{artifact_uri} does not exist",
                    "check the run's outputs (`mlrelay runs show RUN_ID`) and `promotion.artifact`",
                )
            about = {"run_id": run_id, "artifact_uri": artifact_uri, "labels": labels}
            (staging / _VERSION).write_text(json.dumps(about, indent=2), encoding="utf-8")
            shutil.rmtree(folder, ignore_errors=True)  # an upload that died before versions.json
            staging.rename(folder)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _version(self, version_id: str, run_id: str, artifact_uri: str) -> ModelVersion:
        return ModelVersion(
            name=f"{self.model}@{version_id}",
            version_id=version_id,
            run_id=run_id,
            artifact_uri=(self.models_dir / version_id).as_uri() + "/",
        )


def check_traffic(traffic: dict[str, int], deployed_ids: list[str]) -> dict[str, int]:
    """The split as Vertex AI accepts it: deployed ids only, whole percentages summing to 100
    (an empty split when nothing is deployed); a bad one is a PermanentError naming `traffic`."""
    unknown = sorted(set(traffic) - set(deployed_ids))
    if unknown:
        raise PermanentError(
            "traffic",
            f"{', '.join(unknown)} is not deployed on this endpoint",
            f"split only between the deployed models: {', '.join(deployed_ids) or 'none'}",
        )
    wrong = [k for k, v in traffic.items() if isinstance(v, bool) or not isinstance(v, int)]
    wrong += [k for k, v in traffic.items() if k not in wrong and not 0 <= v <= 100]
    if wrong:
        raise PermanentError(
            "traffic", f"{wrong[0]}: {traffic[wrong[0]]!r}", "give whole percentages, 0 to 100"
        )
    total = sum(traffic.values())
    if deployed_ids and total != 100:
        raise PermanentError(
            "traffic", f"the split sums to {total}, not 100", "make the percentages add up to 100"
        )
    return {k: v for k, v in traffic.items()}


def _local(uri: str) -> Path:
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme:
        raise PermanentError(
            "artifact_uri",
            f"{uri} is not on this machine (the embedded endpoint reads local files)",
            "run the pipeline with a local backend, or promote on Vertex AI (MLRELAY_MODE=google)",
        )
    return Path(uri)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on `path.lock`, held across a read-modify-write of `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.with_name(f"{path.name}.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _read_json(path: Path, default: Any) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return default


def _write_json(path: Path, document: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(document, handle, indent=2, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        Path(name).replace(path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
