"""The deployer section: the Vertex endpoint and the KFP hosts' tokens, which never print."""

from __future__ import annotations

from mlrelay.config.settings import Settings


def test_kfp_tokens_come_from_their_named_variables_and_never_print() -> None:
    settings = Settings.from_env(
        {"MLRELAY_KFP_TOKEN_TEAM": "kfp-secret-1", "MLRELAY_KFP_TOKEN_ML_OPS": "kfp-secret-2"}
    )
    tokens = settings.deployer.kfp_tokens
    assert {name: token.value for name, token in tokens.items()} == {
        "team": "kfp-secret-1",
        "ml_ops": "kfp-secret-2",
    }
    shown = repr(settings) + repr(settings.deployer)
    assert "kfp-secret" not in shown
