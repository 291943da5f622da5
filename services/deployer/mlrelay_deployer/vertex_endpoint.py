"""The Vertex AI Model Registry and one endpoint, as a `ModelEndpoint` (the promotion flow's port).

The low-level `aiplatform_v1` ModelServiceClient and EndpointServiceClient over REST, imported on
first use (the deployer's cold start does not pay for them unless a pipeline promotes).

Every call is safe to repeat after a lost answer: each mutation is a look-up, then the change,
retried as a whole (a lost answer's retry finds the work done and does not do it again):
- `upload`: the run's version is found by its version alias (`version_alias(run_id)`) before
  anything is uploaded; the first upload makes the model (`model_id` = `promotion.model`), later
  ones add a version (`parent_model`).
- `deploy`: a deployed model already serving the version is only given its split; a new one gets
  a deployed model id derived from the endpoint and the run (`deployed_model_id`) and the run id
  as display name (how `state` tells whose model a deployment serves).
- `undeploy`: a deployed model no longer there is success (the split then set if it differs).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Any, TypeVar

import structlog

from mlrelay.errors import PermanentError
from mlrelay.ports.protocols import NEW_DEPLOYMENT, DeployedModel, EndpointState, ModelVersion
from mlrelay.registry.backends import VertexOptions
from mlrelay.registry.specs import PromotionSpec
from mlrelay_deployer.deploy import label_value
from mlrelay_deployer.vertex_backend import VertexPipelineBackend
from mlrelay_deployer.vertex_calls import api_clients, retried, vertex_call

log = structlog.get_logger()
T = TypeVar("T")
# Model.version_aliases: starts with a letter (a version id is a number), ends in a letter or digit
ALIAS = re.compile(r"^[a-z][a-zA-Z0-9-]{0,126}[a-z0-9]$")


def version_alias(run_id: str) -> str:
    """The run's version alias: the run id itself (run ids are `[a-z][a-z0-9-]{2,127}`, alias
    syntax), except one ending in `-` or named `default` (the alias Vertex AI gives a model's
    first version): `run-` and 24 hex digits of the run id's SHA-256."""
    if ALIAS.fullmatch(run_id) and run_id != "default":
        return run_id
    return f"run-{hashlib.sha256(run_id.encode()).hexdigest()[:24]}"


def deployed_model_id(endpoint: str, run_id: str) -> str:
    """The id the run's deployment asks for (Vertex AI takes 1-10 digits): from the endpoint and
    the run, so a DeployModel redelivered while the first one is still under way is refused as
    ALREADY_EXISTS instead of deploying the model twice."""
    digest = int(hashlib.sha256(f"{endpoint}\n{run_id}".encode()).hexdigest(), 16)
    return str(1_000_000_000 + digest % 9_000_000_000)


class VertexModelEndpoint:
    """`promotion.model` in the Model Registry of `vertex:`'s project and region, and the
    endpoint `promotion.endpoint` (made beforehand: Terraform, gcloud or the console)."""

    def __init__(
        self,
        options: VertexOptions,
        promotion: PromotionSpec,
        *,
        pipeline: str,
        endpoint: str = "",
        request_timeout_seconds: float = 30.0,
        retry_deadline_seconds: float = 60.0,
        operation_timeout_seconds: float = 300.0,
    ) -> None:
        self.options = options
        self.promotion = promotion
        self.pipeline = pipeline
        self.api_endpoint = endpoint
        self.request_timeout_seconds = request_timeout_seconds  # one request, then a retry
        self.retry_deadline_seconds = retry_deadline_seconds  # all tries of one step
        self.operation_timeout_seconds = operation_timeout_seconds  # an upload's or deploy's wait
        self.parent = f"projects/{options.project}/locations/{options.region}"
        self.model_name = f"{self.parent}/models/{promotion.model}"
        self.endpoint_name = (
            promotion.endpoint
            if "/" in promotion.endpoint
            else f"{self.parent}/endpoints/{promotion.endpoint}"
        )
        self._clients: tuple[Any, Any] | None = None

    @property
    def model_client(self) -> Any:
        if self._clients is None:
            self._clients = api_clients(self.options, self.api_endpoint)
        return self._clients[0]

    @property
    def endpoint_client(self) -> Any:
        if self._clients is None:
            self._clients = api_clients(self.options, self.api_endpoint)
        return self._clients[1]

    # the port

    def upload(self, *, run_id: str, artifact_uri: str, labels: dict[str, str]) -> ModelVersion:
        if not self.promotion.serving_image:
            raise PermanentError(
                "promotion.serving_image",
                "Vertex AI serves a model from a container and none is set",
                "set `serving_image:` to a prebuilt prediction image (e.g. "
                "europe-docker.pkg.dev/vertex-ai/prediction/sklearn-cpu.1-5:latest) or your own",
            )
        alias = version_alias(run_id)
        model = {
            "display_name": self.promotion.model,
            "artifact_uri": artifact_uri,
            "container_spec": {"image_uri": self.promotion.serving_image},
            "labels": {
                **labels,
                "mlrelay-run-id": label_value(run_id),
                "mlrelay-pipeline": label_value(self.pipeline),
            },
            "version_aliases": [alias],
            "version_description": f"mlrelay run {run_id}",
        }

        def get_or_upload() -> ModelVersion:
            found = self._get_model(f"{self.model_name}@{alias}")
            if found is not None:  # made before (a redelivery, or a lost answer)
                return self._version(found, run_id)
            request: dict[str, Any] = {"parent": self.parent, "model": model}
            if self._get_model(self.model_name) is None:
                request["model_id"] = self.promotion.model  # the first upload makes the model
            else:
                request["parent_model"] = self.model_name
            response = self._call(
                "UploadModel",
                lambda: self.model_client.upload_model(
                    request=request, timeout=self.request_timeout_seconds
                ).result(timeout=self.operation_timeout_seconds),
            )
            log.info("model_version_uploaded", model=response.model, version=alias)
            return ModelVersion(
                name=f"{self.model_name}@{response.model_version_id}",
                version_id=str(response.model_version_id),
                run_id=run_id,
                artifact_uri=artifact_uri,
            )

        return self._retried(f"the upload of {run_id}'s model", get_or_upload)

    def state(self) -> EndpointState:
        return self._retried("GetEndpoint", lambda: self._state_of(self._get_endpoint()))

    def deploy(self, *, version: ModelVersion, traffic: dict[str, int]) -> EndpointState:
        def deploy_once() -> EndpointState:
            now = self._state_of(self._get_endpoint())
            serving = [d for d in now.deployed if d.model == version.name]
            if serving:  # deployed before (a redelivery, or a lost answer): only the split
                own = serving[0].id
                split = {(own if k == NEW_DEPLOYMENT else k): v for k, v in traffic.items()}
                return now if now.traffic == split else self._update_traffic(split)
            request = {
                "endpoint": self.endpoint_name,
                "deployed_model": {
                    "id": deployed_model_id(self.endpoint_name, version.run_id),
                    "model": version.name,
                    "display_name": version.run_id,
                    "dedicated_resources": {
                        "machine_spec": {"machine_type": self.promotion.machine_type},
                        "min_replica_count": self.promotion.min_replicas,
                        "max_replica_count": self.promotion.max_replicas,
                    },
                },
                "traffic_split": dict(traffic),
            }
            self._call(
                "DeployModel",
                lambda: self.endpoint_client.deploy_model(
                    request=request, timeout=self.request_timeout_seconds
                ).result(timeout=self.operation_timeout_seconds),
            )
            log.info("model_deployed", endpoint=self.endpoint_name, model=version.name)
            return self._state_of(self._get_endpoint())

        return self._retried(f"the deployment of {version.name}", deploy_once)

    def set_traffic(self, traffic: dict[str, int]) -> EndpointState:
        return self._retried("UpdateEndpoint", lambda: self._update_traffic(dict(traffic)))

    def undeploy(self, *, deployed_model_id: str, traffic: dict[str, int]) -> EndpointState:
        from google.api_core import exceptions

        def undeploy_once() -> EndpointState:
            request = {
                "endpoint": self.endpoint_name,
                "deployed_model_id": deployed_model_id,
                "traffic_split": dict(traffic),
            }
            try:
                self._call(
                    "UndeployModel",
                    lambda: self.endpoint_client.undeploy_model(
                        request=request, timeout=self.request_timeout_seconds
                    ).result(timeout=self.operation_timeout_seconds),
                    expected=(exceptions.NotFound,),
                )
            except exceptions.NotFound:  # gone already (a lost answer) or the endpoint is gone
                now = self._state_of(self._get_endpoint())  # the latter: PermanentError
                log.info("model_already_undeployed", deployed_model_id=deployed_model_id)
                if traffic and now.traffic != traffic:
                    return self._update_traffic(dict(traffic))
                return now
            log.info("model_undeployed", endpoint=self.endpoint_name, deployed=deployed_model_id)
            return self._state_of(self._get_endpoint())

        return self._retried(f"the undeployment of {deployed_model_id}", undeploy_once)

    # the calls

    def _get_model(self, name: str) -> Any | None:
        from google.api_core import exceptions

        try:
            return self._call(
                "GetModel",
                lambda: self.model_client.get_model(
                    request={"name": name}, timeout=self.request_timeout_seconds
                ),
                expected=(exceptions.NotFound,),
            )
        except exceptions.NotFound:
            return None

    def _get_endpoint(self) -> Any:
        return self._call(
            "GetEndpoint",
            lambda: self.endpoint_client.get_endpoint(
                request={"name": self.endpoint_name}, timeout=self.request_timeout_seconds
            ),
        )

    def _update_traffic(self, traffic: dict[str, int]) -> EndpointState:
        updated = self._call(
            "UpdateEndpoint",
            lambda: self.endpoint_client.update_endpoint(
                request={
                    "endpoint": {"name": self.endpoint_name, "traffic_split": traffic},
                    "update_mask": {"paths": ["traffic_split"]},
                },
                timeout=self.request_timeout_seconds,
            ),
        )
        log.info("endpoint_traffic_set", endpoint=self.endpoint_name, traffic=traffic)
        return self._state_of(updated)

    def _state_of(self, endpoint: Any) -> EndpointState:
        deployed = tuple(
            DeployedModel(
                id=str(d.id),
                model=f"{d.model}@{d.model_version_id}",
                run_id=self._run_of(d),
            )
            for d in endpoint.deployed_models
        )
        traffic = {str(k): int(v) for k, v in endpoint.traffic_split.items()}
        return EndpointState(endpoint=str(endpoint.name), deployed=deployed, traffic=traffic)

    def _run_of(self, deployed: Any) -> str | None:
        """The run whose model a deployment serves: its display name, when the model version it
        serves carries that run's label (so a model deployed by hand is nobody's run)."""
        run_id = str(deployed.display_name)
        if not re.fullmatch(r"[a-z][a-z0-9-]{2,127}", run_id):
            return None
        version = self._get_model(f"{deployed.model}@{deployed.model_version_id}")
        labels = dict(version.labels) if version is not None else {}
        return run_id if labels.get("mlrelay-run-id") == label_value(run_id) else None

    def _call(
        self, method: str, call: Callable[[], T], *, expected: tuple[type[Exception], ...] = ()
    ) -> T:
        return vertex_call(method, call, project=self.options.project, expected=expected)

    def _retried(self, what: str, work: Callable[[], T]) -> T:
        return retried(what, work, deadline_seconds=self.retry_deadline_seconds)

    def _version(self, model: Any, run_id: str) -> ModelVersion:
        return ModelVersion(
            name=f"{self.model_name}@{model.version_id}",
            version_id=str(model.version_id),
            run_id=run_id,
            artifact_uri=str(model.artifact_uri),
        )


def pipeline_output_uri(
    options: VertexOptions,
    job_name: str,
    output: str,
    *,
    endpoint: str = "",
    request_timeout_seconds: float = 30.0,
) -> str | None:
    """The URI of the output artifact named `output` of a Vertex AI PipelineJob (GetPipelineJob,
    `job_detail.task_details[].outputs[output].artifacts[].uri`): the root task's (the
    pipeline's own outputs) first, then each task's in the job's order; None when no task has it
    (or the service has no such job)."""
    backend = VertexPipelineBackend(
        options, "", endpoint=endpoint, request_timeout_seconds=request_timeout_seconds
    )
    job = vertex_call("GetPipelineJob", lambda: backend.read_job(job_name), project=options.project)
    if job is None:
        return None
    tasks = list(job.job_detail.task_details)
    for task in sorted(tasks, key=lambda t: bool(t.parent_task_id)):  # the root first
        if output in task.outputs:
            for artifact in task.outputs[output].artifacts:
                if artifact.uri:
                    return str(artifact.uri)
    return None
