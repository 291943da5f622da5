"""functions-framework source for the deployer in the harness: the real entry point, with each
vertex pipeline's backend pointed at the loopback Vertex AI (HARNESS_VERTEX_ENDPOINT), the one
thing the deployed function cannot be told by environment variable."""

import os

import functions_framework
from google.auth.credentials import AnonymousCredentials
from google.cloud.aiplatform_v1.services.pipeline_service import PipelineServiceClient

from mlrelay.logs import configure_logging
from mlrelay.settings import Settings
from mlrelay.wiring import Ports, use_ports
from mlrelay_deployer import entry
from mlrelay_deployer.vertex_backend import VertexPipelineBackend

settings = Settings.from_env()
configure_logging(settings.log_format, settings.log_level)
client = PipelineServiceClient(
    transport="rest",
    client_options={"api_endpoint": os.environ["HARNESS_VERTEX_ENDPOINT"]},
    credentials=AnonymousCredentials(),
)
lifecycle = f"projects/{settings.project}/topics/{settings.topics.lifecycle}"
components = {
    f"pipeline-backend:{name}": VertexPipelineBackend(
        spec.vertex, lifecycle, client=client, retry_deadline_seconds=20.0
    )
    for name, spec in Ports(settings).registry.pipelines.items()
    if spec.vertex is not None
}
use_ports(Ports(settings, components=components))

on_deploy_request = functions_framework.cloud_event(entry.on_deploy_request)
