"""A pipeline's parameters (mlrelay.registry.specs): a request may override only those the
registry allows, with values of the default's type."""

from __future__ import annotations

import pytest

from mlrelay.errors import PermanentError
from mlrelay.registry import load_registry, resolve_parameters
from tests.helpers import REGISTRY


def test_overrides_are_limited_to_allowed_parameters_and_typed() -> None:
    spec = load_registry(REGISTRY).pipeline("penguins")
    assert resolve_parameters(spec, {"n_estimators": 7})["n_estimators"] == 7
    with pytest.raises(PermanentError, match="may not be overridden") as caught:
        resolve_parameters(spec, {"test_fraction": 0.5})
    assert caught.value.field == "parameters.test_fraction"
    with pytest.raises(PermanentError, match="not a parameter of this pipeline"):
        resolve_parameters(spec, {"learning_rate": 0.5})
    with pytest.raises(PermanentError, match="expected int like the default 100, got 'many'"):
        resolve_parameters(spec, {"n_estimators": "many"})
    with pytest.raises(PermanentError, match="expected int"):
        resolve_parameters(spec, {"n_estimators": True})


def test_actions_allow_nobody_by_default_and_check_slack_ids() -> None:
    from mlrelay.registry import RegistryError, parse_registry

    assert load_registry(REGISTRY).pipeline("penguins").actions.allowed_users == []
    text = REGISTRY.read_text().replace(
        "\n  penguins:\n",
        "\n  penguins:\n    actions:\n      allowed_users: [U012ABC, alice]\n",
        1,
    )
    assert "alice" in text
    with pytest.raises(RegistryError) as caught:
        parse_registry(text, "registry.yaml", REGISTRY.parent)
    assert "actions.allowed_users.1" in str(caught.value)
