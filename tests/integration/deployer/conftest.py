"""Fixtures of the deployer's tests: the loopback Vertex AI (one per module, emptied for each
test) and the Vertex AI backend talking to it with the official client over REST."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud.aiplatform_v1.services.pipeline_service import PipelineServiceClient

from mlrelay_deployer.vertex_backend import VertexPipelineBackend
from tests.fakes.vertex import FakeVertex
from tests.integration.deployer.vertex_deploys import OPTIONS


@pytest.fixture(scope="module")
def vertex() -> Iterator[FakeVertex]:
    with FakeVertex() as fake:
        yield fake


@pytest.fixture
def backend(vertex: FakeVertex) -> VertexPipelineBackend:
    vertex.reset()
    client = PipelineServiceClient(
        transport="rest",
        client_options={"api_endpoint": vertex.endpoint},
        credentials=AnonymousCredentials(),
    )
    return VertexPipelineBackend(
        OPTIONS, "projects/test-proj/topics/mlrelay-lifecycle", client=client,
        retry_deadline_seconds=3.0,
    )  # fmt: skip
