"""What the KFP backend hands `kfp.Client` for a host's credentials, and how a refusal of them
is explained (the calls themselves run against a loopback KFP in tests/integration/deployer)."""

from __future__ import annotations

import pytest

from mlrelay.config.env import Secret
from mlrelay.errors import ConfigurationError
from mlrelay.registry.backends import KfpOptions
from mlrelay_deployer.kfp_backend import client_arguments, refused_credentials

IAP_CLIENT_ID = "123456789012-abcdefghijklmnopqrstuvwxyz012345.apps.googleusercontent.com"


def test_iap_client_id_is_handed_to_kfp_client_and_no_token() -> None:
    options = KfpOptions(host="https://kfp.example.com", client_id=IAP_CLIENT_ID)

    assert client_arguments(options, {"team": Secret("unused")}) == {
        "host": "https://kfp.example.com",
        "namespace": "kubeflow",
        "client_id": IAP_CLIENT_ID,
    }


def test_named_token_is_handed_to_kfp_client_as_its_existing_token() -> None:
    options = KfpOptions(host="https://kfp.example.com", token="team", namespace="ml")

    arguments = client_arguments(options, {"team": Secret("t-1"), "other": Secret("t-2")})

    assert arguments == {"host": "https://kfp.example.com", "namespace": "ml",
                         "existing_token": "t-1"}  # fmt: skip


def test_no_credentials_lets_kfp_decide() -> None:
    options = KfpOptions(host="https://abc-dot-europe-west4.pipelines.googleusercontent.com")

    assert set(client_arguments(options, {"team": Secret("t-1")})) == {"host", "namespace"}


def test_named_token_without_its_variable_names_the_variable_and_the_terraform_input() -> None:
    options = KfpOptions(host="https://kfp.example.com", token="team")

    with pytest.raises(ConfigurationError) as missing:
        client_arguments(options, {"team": Secret("")})

    assert missing.value.field == "MLRELAY_KFP_TOKEN_TEAM"
    assert 'kfp_token_secret_ids = { team = "<secret id>" }' in missing.value.fix


@pytest.mark.parametrize(
    ("options", "field", "fix"),
    [
        (KfpOptions(host="https://kfp.example.com", token="team"), "kfp.token",
         "MLRELAY_KFP_TOKEN_TEAM"),
        (KfpOptions(host="https://kfp.example.com", client_id=IAP_CLIENT_ID), "kfp.client_id",
         "IAP-secured Web App User"),
        (KfpOptions(host="https://abc-dot-europe-west4.pipelines.googleusercontent.com"),
         "kfp.host", "AI Platform Pipelines"),
        (KfpOptions(host="https://kfp.example.com"), "kfp.host", "set `kfp.token`"),
    ],
)  # fmt: skip
def test_refused_credentials_say_what_to_fix_for_each_kind_of_host(
    options: KfpOptions, field: str, fix: str
) -> None:
    refused = refused_credentials(options, "connect", 401, "Unauthenticated")

    assert refused.field == field
    assert fix in refused.fix
    assert refused.problem == "the KFP host refused to connect: 401 Unauthenticated"
