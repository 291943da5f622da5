"""The one place that knows the model endpoints: the embedded one (files under
`$MLRELAY_HOME`) and Vertex AI's Model Registry and endpoint, chosen by `MLRELAY_MODE`. Both are
imported on first use: a deployer that never promotes never imports them."""

from __future__ import annotations

from mlrelay.errors import ConfigurationError
from mlrelay.ports.container import Ports
from mlrelay.ports.protocols import ModelEndpoint
from mlrelay.registry.specs import PipelineSpec


def build_endpoint(ports: Ports, spec: PipelineSpec, *, pipeline: str = "") -> ModelEndpoint:
    """`pipeline`: the pipeline's name (Vertex AI labels its models and deployments with it)."""
    promotion = spec.promotion
    if promotion is None:
        raise ConfigurationError("promotion", "the pipeline has no `promotion:`", "add one")
    settings = ports.settings
    if settings.mode == "embedded":
        # i18b's; the ignore goes once both are merged
        from mlrelay.adapters.embedded_endpoint import (  # type: ignore[import-not-found,unused-ignore]
            EmbeddedEndpoint,
        )

        embedded: ModelEndpoint = EmbeddedEndpoint(settings.home, promotion)
        return embedded
    if spec.vertex is None:  # the registry check says so too (mlrelay validate)
        raise ConfigurationError(
            "vertex",
            "`promotion:` on Google Cloud needs the project and region of a `vertex:` section",
            "add `vertex: {project: ..., region: ...}` to the pipeline",
        )
    if promotion.serving_image is None:
        raise ConfigurationError(
            "promotion.serving_image",
            "`promotion:` on Vertex AI needs the container that serves the model",
            "set `serving_image` (e.g. a prebuilt scikit-learn prediction image)",
        )
    from mlrelay_deployer.vertex_endpoint import (  # type: ignore[import-not-found,unused-ignore]
        VertexModelEndpoint,
    )

    vertex: ModelEndpoint = VertexModelEndpoint(
        spec.vertex,
        promotion,
        pipeline=pipeline,
        endpoint=settings.deployer.vertex_endpoint,
        request_timeout_seconds=settings.http_timeout_seconds,
    )
    return vertex


def endpoint_of(ports: Ports, pipeline: str) -> ModelEndpoint:
    """The pipeline's endpoint, built once per process (a test gives its own through Ports)."""
    spec = ports.registry.pipeline(pipeline)
    return ports.model_endpoint(pipeline, lambda p: build_endpoint(p, spec, pipeline=pipeline))
