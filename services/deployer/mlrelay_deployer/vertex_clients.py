"""One way to make an `aiplatform_v1` client: REST transport, the region's endpoint unless the
deployer's `vertex_endpoint` setting names another, anonymous credentials for a plain-http
loopback peer (tests). The pipeline, custom job and promotion code all use it."""

from __future__ import annotations

from typing import Any


def rest_client(client_class: Any, region: str, endpoint: str = "") -> Any:
    """`client_class` (e.g. PipelineServiceClient) at `endpoint`, else `<region>-aiplatform`."""
    api_endpoint = endpoint or f"{region}-aiplatform.googleapis.com"
    credentials = None
    if api_endpoint.startswith("http://"):  # a plain-text loopback peer: no Google sign-in
        from google.auth.credentials import AnonymousCredentials

        credentials = AnonymousCredentials()  # type: ignore[no-untyped-call]
    return client_class(
        transport="rest",
        client_options={"api_endpoint": api_endpoint},
        credentials=credentials,
    )
