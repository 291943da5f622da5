"""How promotion talks to Vertex AI (mlrelay_deployer.vertex_endpoint): its REST clients, one
request with Google's refusals turned into mlrelay's errors, and a step retried as a whole."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from mlrelay.errors import ConfigurationError, PermanentError, TransientError
from mlrelay.registry.backends import VertexOptions
from mlrelay_deployer.vertex_backend import worth_retrying

T = TypeVar("T")
# the permission each call needs (all in roles/aiplatform.user); the registry field it concerns
PERMISSIONS = {
    "UploadModel": ("aiplatform.models.upload", "promotion.model"),
    "GetModel": ("aiplatform.models.get", "promotion.model"),
    "GetEndpoint": ("aiplatform.endpoints.get", "promotion.endpoint"),
    "DeployModel": ("aiplatform.endpoints.deploy", "promotion.endpoint"),
    "UndeployModel": ("aiplatform.endpoints.undeploy", "promotion.endpoint"),
    "UpdateEndpoint": ("aiplatform.endpoints.update", "promotion.endpoint"),
    "GetPipelineJob": ("aiplatform.pipelineJobs.get", "promotion.artifact"),
}


def api_clients(options: VertexOptions, endpoint: str) -> tuple[Any, Any]:
    """ModelServiceClient and EndpointServiceClient over REST at `endpoint` (default: the
    region's), as VertexPipelineBackend's client."""
    from google.cloud.aiplatform_v1.services.endpoint_service import EndpointServiceClient
    from google.cloud.aiplatform_v1.services.model_service import ModelServiceClient

    from mlrelay_deployer.vertex_clients import rest_client

    return (
        rest_client(ModelServiceClient, options.region, endpoint),
        rest_client(EndpointServiceClient, options.region, endpoint),
    )


def vertex_call(
    method: str,
    call: Callable[[], T],
    *,
    project: str,
    expected: tuple[type[Exception], ...] = (),
) -> T:
    """One request (and its operation's wait): a refusal becomes a PermanentError naming the
    field and the fix, except a missing grant (403, 401: the deployer's own IAM), which is a
    ConfigurationError, redelivered until it is granted; what is worth another try goes up to
    `retried`, and so does `expected` (what the caller handles itself)."""
    from google.api_core import exceptions

    permission, field = PERMISSIONS[method]
    try:
        return call()
    except expected:
        raise
    except worth_retrying():
        raise
    except TimeoutError:  # the operation is not done yet: a redelivery looks again
        raise TransientError(f"Vertex AI's {method} is still under way") from None
    except (exceptions.Forbidden, exceptions.Unauthorized) as exc:  # REST: by HTTP status
        raise ConfigurationError(
            field,
            f"Vertex AI refused {method}: {exc.code} {exc.message}",
            f"grant the deployer's service account {permission} (roles/aiplatform.user) "
            f"in project {project} (infra/)",
        ) from None
    except exceptions.NotFound as exc:
        raise PermanentError(
            field,
            f"Vertex AI answered 404 to {method}: {exc.message}",
            "create the endpoint (Terraform google_vertex_ai_endpoint, or `gcloud ai "
            "endpoints create`) in the region of `vertex:` and put its id here"
            if field == "promotion.endpoint"
            else "check `promotion.model` and the project and region of `vertex:`",
        ) from None
    except exceptions.Conflict as exc:  # a first upload raced, or a deploy is under way
        raise TransientError(f"Vertex AI answered 409 to {method}: {exc.message}") from None
    except exceptions.GoogleAPICallError as exc:
        raise PermanentError(
            field,
            f"Vertex AI refused {method}: {exc.code} {exc.message}",
            "fix the pipeline's `promotion:` entry (serving_image, machine_type, replicas, "
            "the endpoint) as the message says",
        ) from None


def retried(what: str, work: Callable[[], T], *, deadline_seconds: float) -> T:
    """`work` again after an answer worth another try (a lost answer among them) until the
    retry deadline; then a TransientError (redelivery)."""
    from google.api_core import exceptions
    from google.api_core import retry as retries

    transient = worth_retrying()
    retry = retries.Retry(
        predicate=retries.if_exception_type(*transient),
        initial=1.0,
        maximum=10.0,
        multiplier=2.0,
        timeout=deadline_seconds,
    )
    try:
        return retry(work)()
    except exceptions.RetryError as exc:
        raise TransientError(f"Vertex AI did not answer {what}: {exc}") from exc
    except transient as exc:
        raise TransientError(f"Vertex AI did not answer {what}: {exc}") from exc
