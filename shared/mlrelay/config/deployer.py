"""The deployer's settings (read from the environment by the deployer only)."""

from __future__ import annotations

from dataclasses import dataclass

from mlrelay.config.env import setting


@dataclass(frozen=True)
class DeployerSettings:
    """Where the deployer reaches Vertex AI."""

    vertex_endpoint: str = setting(
        "MLRELAY_VERTEX_ENDPOINT",
        "Vertex AI API endpoint; empty: `<region>-aiplatform.googleapis.com` of the pipeline's "
        "region (tests point it at a loopback server).",
        default="",
    )
