"""The deployer's settings (read from the environment by the deployer only)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from mlrelay.config.env import Secret, secret, setting

KFP_TOKEN_PREFIX = "MLRELAY_KFP_TOKEN_"  # noqa: S105 - a variable name, not a token


def kfp_token_variable(name: str) -> str:
    """The variable of the registry's `kfp.token: <name>`."""
    return KFP_TOKEN_PREFIX + name.upper()


@dataclass(frozen=True)
class DeployerSettings:
    """Where the deployer reaches Vertex AI, and the tokens of KFP hosts that ask for one."""

    vertex_endpoint: str = setting(
        "MLRELAY_VERTEX_ENDPOINT",
        "Vertex AI API endpoint; empty: `<region>-aiplatform.googleapis.com` of the pipeline's "
        "region (tests point it at a loopback server).",
        default="",
    )
    kfp_tokens: Mapping[str, Secret] = setting(
        KFP_TOKEN_PREFIX,
        "Bearer tokens of KFP hosts: `MLRELAY_KFP_TOKEN_TEAM` is the registry's "
        "`kfp.token: team`. In the cloud, a Secret Manager secret (Terraform "
        "`kfp_token_secret_ids`), read when an instance starts.",
        default_factory=dict,
        parse=secret,
        prefix=True,
        secret=True,
    )
