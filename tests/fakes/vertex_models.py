"""The Model Registry and endpoints of the loopback Vertex AI (ModelService, EndpointService, v1
REST), part of FakeVertex (tests/fakes/vertex.py), which hands it every request first.

Models: UploadModel (a long-running operation, answered done) makes a model (`modelId`) or a new
version of one (`parentModel`), version ids 1, 2, ..., `versionAliases` (the first version also
gets `default`, an alias is unique within its model); GetModel by `models/<id>`,
`models/<id>@<version id>` or `models/<id>@<alias>`; ListModels. Endpoints (made by `add_endpoint`,
as Terraform or the console would): GetEndpoint, DeployModel (`"0"` in `trafficSplit` is the new
deployed model), UndeployModel, and UpdateEndpoint (PATCH, `updateMask=trafficSplit`), with the
service's own checks: a split sums to 100 and names deployed models only, a deployed model with
traffic is undeployed only by a split that takes its traffic away (FAILED_PRECONDITION), an id
deployed twice is ALREADY_EXISTS, and an unknown deployed model id is NOT_FOUND.
`operations/<id>` answers GET for a client that polls; with `hold_deployments` a DeployModel
stays under way (its model not on the endpoint, its id taken) until `finish_deployments`.
`fail_next` fails the next request whose path contains a text with a status and the service's
message.
"""

from __future__ import annotations

import json
import re
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from .server import Answer, Request, json_answer

JSON = "application/json; charset=UTF-8"
_LOCATION = r"projects/[^/]+/locations/[^/]+"
_UPLOAD = re.compile(rf"^/v1/({_LOCATION})/models:upload$")
_MODELS = re.compile(rf"^/v1/({_LOCATION})/models$")
_MODEL = re.compile(rf"^/v1/({_LOCATION}/models/[^/@:]+)(?:@([^/:]+))?$")
_ENDPOINT = re.compile(rf"^/v1/({_LOCATION}/endpoints/[^/:]+)(?::(deployModel|undeployModel))?$")
# the REST client polls an operation at /ui/<name> (the first of its GetOperation routes)
_OPERATION = re.compile(rf"^/(?:v1|ui)/({_LOCATION}/(?:models|endpoints)/[^/]+/operations/[^/]+)$")
ALIAS = re.compile(r"^[a-z][a-zA-Z0-9-]{0,126}[a-z0-9]$")
_STATUS = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
           409: "ALREADY_EXISTS", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL",
           503: "UNAVAILABLE"}  # fmt: skip
TYPES = "type.googleapis.com/google.cloud.aiplatform.v1."
CREATED = "2026-12-01T06:00:01.000000Z"


@dataclass
class FakeVertexModels:
    models: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # name -> versions
    endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    operations: dict[str, dict[str, Any]] = field(default_factory=dict)
    failures: deque[tuple[str, int, str]] = field(default_factory=deque)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # DeployModel's operation stays under way (the deployed model not yet on the endpoint, as for
    # the minutes the service takes) until `finish_deployments`
    hold_deployments: bool = False
    held: dict[str, tuple[str, Callable[[], None]]] = field(default_factory=dict)  # op -> id, do
    _ids: int = 0

    def reset(self) -> None:
        with self.lock:
            self.models.clear()
            self.endpoints.clear()
            self.operations.clear()
            self.failures.clear()
            self.held.clear()
            self.hold_deployments = False
            self._ids = 0

    def fail_next(self, status: int, message: str, *, path: str = "", times: int = 1) -> None:
        with self.lock:
            self.failures.extend([(path, status, message)] * times)

    def add_endpoint(self, name: str, display_name: str = "churn") -> None:
        with self.lock:
            self.endpoints[name] = {"name": name, "displayName": display_name,
                                    "createTime": CREATED, "etag": "AMEw9yN"}  # fmt: skip

    def finish_deployments(self) -> None:
        """The held DeployModel operations end: their models are deployed, the splits set."""
        with self.lock:
            for name, (_, deploy) in self.held.items():
                deploy()
                self.operations[name]["done"] = True
            self.held.clear()

    def endpoint(self, name: str) -> dict[str, Any]:
        with self.lock:
            return json.loads(json.dumps(self.endpoints[name]))  # type: ignore[no-any-return]

    def answer(self, request: Request) -> Answer | None:
        """The answer to a Model Registry or endpoint request; None: not one of those."""
        path, method = unquote(request.path), request.method  # the client sends `@` as %40
        if not (_UPLOAD.match(path) or _MODELS.match(path) or _MODEL.match(path)
                or _ENDPOINT.match(path) or _OPERATION.match(path)):  # fmt: skip
            return None
        with self.lock:
            for failure in self.failures:
                if failure[0] in path:
                    self.failures.remove(failure)
                    return error(failure[1], failure[2])
            if method == "POST" and (match := _UPLOAD.match(path)):
                return self._upload(match.group(1), request.json() or {})
            if method == "GET" and (match := _OPERATION.match(path)):
                operation = self.operations.get(match.group(1))
                return answer(operation) if operation else error(404, f"{path} not found")
            if method == "GET" and (match := _MODELS.match(path)):
                found = [versions[0] for name, versions in sorted(self.models.items())
                         if name.startswith(match.group(1) + "/")]  # fmt: skip
                return answer({"models": found} if found else {})
            if method == "GET" and (match := _MODEL.match(path)):
                return self._get_model(match.group(1), match.group(2))
            if match := _ENDPOINT.match(path):
                endpoint = self.endpoints.get(match.group(1))
                if endpoint is None:
                    return error(404, f'Endpoint "{match.group(1)}" not found.')
                verb = match.group(2)
                if method == "GET" and verb is None:
                    return answer(endpoint)
                if method == "PATCH" and verb is None:
                    return self._update(endpoint, request)
                if method == "POST" and verb == "deployModel":
                    return self._deploy(endpoint, request.json() or {})
                if method == "POST" and verb == "undeployModel":
                    return self._undeploy(endpoint, request.json() or {})
            return error(404, f"no such method: {method} {path}")

    # models

    def _version(self, model: str, ref: str | None) -> dict[str, Any] | None:
        versions = self.models.get(model)
        if not versions:
            return None
        for version in versions:
            if ref is None and "default" in version["versionAliases"]:
                return version
            if ref is not None and ref in (version["versionId"], *version["versionAliases"]):
                return version
        return None

    def _get_model(self, model: str, ref: str | None) -> Answer:
        version = self._version(model, ref)
        if version is None:
            shown = f"{model}@{ref}" if ref else model
            return error(404, f'Model "{shown}" not found.')
        return answer(version)

    def _upload(self, parent: str, body: dict[str, Any]) -> Answer:
        model = body.get("model") or {}
        if not model.get("displayName"):
            return error(400, "Model.display_name must be set.")
        if not (model.get("containerSpec") or {}).get("imageUri"):
            return error(400, "Model.container_spec.image_uri must be set for a custom model.")
        aliases = list(model.get("versionAliases") or [])
        for alias in aliases:
            if not ALIAS.match(alias) or alias == "default":
                return error(400, f"Version alias {alias!r} must match {ALIAS.pattern} and "
                                  "not be `default`.")  # fmt: skip
        if parent_model := body.get("parentModel"):
            versions = self.models.get(parent_model)
            if not versions:
                return error(404, f'Model "{parent_model}" not found.')
            taken = {a for v in versions for a in v["versionAliases"]}
            if clash := taken.intersection(aliases):
                return error(400, f"Version alias {sorted(clash)[0]} is already used in model "
                                  f"{parent_model}.")  # fmt: skip
            name, version_id = parent_model, str(len(versions) + 1)
        else:
            self._ids += 1
            name = f"{parent}/models/{body.get('modelId') or 4000000000000000000 + self._ids}"
            if name in self.models:
                return error(409, f'Model "{name}" already exists.')
            versions, version_id = [], "1"
            aliases = ["default", *aliases]
        version = {
            **model,
            "name": name,
            "versionId": version_id,
            "versionAliases": aliases,
            "createTime": CREATED,
            "versionCreateTime": CREATED,
            "versionUpdateTime": CREATED,
            "etag": f"AMEw9yP{version_id}",
        }
        self.models[name] = [*versions, version]
        return self._done(
            name,
            "UploadModelOperationMetadata",
            {"@type": f"{TYPES}UploadModelResponse", "model": name, "modelVersionId": version_id},
        )

    def _done(
        self, resource: str, metadata: str, response: dict[str, Any], *, done: bool = True
    ) -> Answer:
        """A long-running operation, answered done (the service's is done minutes later), or
        under way (`done` false: GET operations/<id> says when it is)."""
        self._ids += 1
        name = f"{resource}/operations/{7000000000000000000 + self._ids}"
        operation = {
            "name": name,
            "metadata": {"@type": f"{TYPES}{metadata}",
                         "genericMetadata": {"createTime": CREATED, "updateTime": CREATED}},
            "done": done,
            "response": response,
        }  # fmt: skip
        self.operations[name] = operation
        shown = operation if done else {k: v for k, v in operation.items() if k != "response"}
        return answer(shown)

    # endpoints

    def _split_problem(
        self, endpoint: dict[str, Any], split: dict[str, Any], *, new: bool = False, gone: str = ""
    ) -> str | None:
        deployed = {d["id"] for d in endpoint.get("deployedModels", [])} - {gone}
        for key, percent in split.items():
            if key not in deployed and not (new and key == "0"):
                return f"Deployed model {key} in traffic_split is not deployed to the endpoint."
            if not isinstance(percent, int) or percent < 0:
                return f"Traffic percentage of {key} must be a non-negative integer."
        if sum(split.values()) != 100:
            return f"Sum of all traffic in traffic_split must be 100, got {sum(split.values())}."
        return None

    def _deploy(self, endpoint: dict[str, Any], body: dict[str, Any]) -> Answer:
        deployed = dict(body.get("deployedModel") or {})
        model_ref = str(deployed.get("model", ""))
        model, _, ref = model_ref.partition("@")
        version = self._version(model, ref or None)
        if version is None:
            return error(404, f'Model "{model_ref}" not found.')
        if not deployed.get("dedicatedResources") and not deployed.get("automaticResources"):
            return error(400, "Model requires dedicated_resources to be deployed.")
        present = endpoint.get("deployedModels", [])
        chosen = str(deployed.get("id") or "")
        if chosen and not re.fullmatch(r"[0-9]{1,10}", chosen):
            return error(400, f"DeployedModel id {chosen} must be 1-10 digits.")
        if chosen and chosen in {d["id"] for d in present} | {i for i, _ in self.held.values()}:
            return error(409, f"DeployedModel with ID {chosen} already exists in the endpoint.")
        split = {k: v for k, v in (body.get("trafficSplit") or {}).items()}
        if split and (problem := self._split_problem(endpoint, split, new=True)):
            return error(400, problem)
        self._ids += 1
        deployed_id = chosen or str(1000000000000000000 + self._ids)
        record = {
            **deployed,
            "id": deployed_id,
            "model": model,
            "modelVersionId": version["versionId"],
            "createTime": CREATED,
        }

        def deploy() -> None:
            now = endpoint.get("deployedModels", [])
            endpoint["deployedModels"] = [*now, record]
            if split:
                new_split = {(deployed_id if k == "0" else k): v for k, v in split.items()}
                endpoint["trafficSplit"] = new_split
            elif not now:
                endpoint["trafficSplit"] = {deployed_id: 100}

        if not self.hold_deployments:
            deploy()
        answered = self._done(
            endpoint["name"],
            "DeployModelOperationMetadata",
            {"@type": f"{TYPES}DeployModelResponse", "deployedModel": record},
            done=not self.hold_deployments,
        )
        if self.hold_deployments:
            self.held[json.loads(answered.body)["name"]] = (deployed_id, deploy)
        return answered

    def _undeploy(self, endpoint: dict[str, Any], body: dict[str, Any]) -> Answer:
        gone = str(body.get("deployedModelId", ""))
        present = endpoint.get("deployedModels", [])
        if gone not in {d["id"] for d in present}:
            return error(404, f"DeployedModel {gone} not found in endpoint {endpoint['name']}.")
        rest = [d for d in present if d["id"] != gone]
        split = body.get("trafficSplit") or {}
        if split and rest:
            if split.get(gone):
                return error(400, f"traffic_split still sends traffic to {gone}.")
            if problem := self._split_problem(endpoint, {k: v for k, v in split.items()
                                                         if k != gone}, gone=gone):  # fmt: skip
                return error(400, problem)
        elif rest and (endpoint.get("trafficSplit") or {}).get(gone):
            return error(400, f"Model {gone} has traffic assigned; undeploying it requires a new "
                              "traffic_split without it.", "FAILED_PRECONDITION")  # fmt: skip
        endpoint["deployedModels"] = rest
        if not rest:
            endpoint.pop("trafficSplit", None)
            endpoint.pop("deployedModels", None)
        elif split:
            endpoint["trafficSplit"] = {k: v for k, v in split.items() if k != gone}
        return self._done(
            endpoint["name"],
            "UndeployModelOperationMetadata",
            {"@type": f"{TYPES}UndeployModelResponse"},
        )

    def _update(self, endpoint: dict[str, Any], request: Request) -> Answer:
        masks = ",".join(request.query.get("updateMask", [])).split(",")
        body = request.json() or {}
        if not {"trafficSplit", "traffic_split"}.intersection(masks):
            return error(400, f"update_mask {masks} names no field this test fake updates.")
        split = dict(body.get("trafficSplit") or {})
        if problem := self._split_problem(endpoint, split):
            return error(400, problem)
        endpoint["trafficSplit"] = split
        return answer(endpoint)


def answer(document: dict[str, Any]) -> Answer:
    return json_answer(200, json.loads(json.dumps(document)), JSON)


def error(status: int, message: str, reason: str = "") -> Answer:
    body = {"code": status, "message": message, "status": reason or _STATUS.get(status, "UNKNOWN")}
    return json_answer(status, {"error": body}, JSON)
