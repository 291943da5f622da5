"""docs/registry.schema.json is the JSON Schema of the registry's models
(mlrelay_tools.registry_schema), and the example registry names it so editors validate it."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
import pytest
from ruamel.yaml import YAML

from mlrelay.registry import RegistryError, parse_registry
from mlrelay_tools.registry_schema import SCHEMA_FILE, render
from tests.helpers import REGISTRY, REPO

SCHEMA = REPO / SCHEMA_FILE


def schema_errors(text: str) -> list[str]:
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    document: Any = YAML(typ="safe").load(text)
    return [error.message for error in validator.iter_errors(document)]


def test_the_checked_in_schema_is_the_rendering_of_the_models() -> None:
    assert SCHEMA.read_text() == render(), (
        f"{SCHEMA_FILE} is stale: run "
        f".venv/bin/python -m mlrelay_tools.registry_schema > {SCHEMA_FILE}"
    )


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    schema = json.loads(SCHEMA.read_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)
    assert "base_dir" not in SCHEMA.read_text()  # set by the loader, never written in the file


def test_the_example_registry_names_the_schema_in_its_modeline_and_passes_it() -> None:
    first = REGISTRY.read_text().splitlines()[0]
    modeline = re.fullmatch(r"# yaml-language-server: \$schema=(\S+)", first)
    assert modeline, f"{REGISTRY} must start with the yaml-language-server modeline"
    assert (REGISTRY.parent / modeline.group(1)).resolve() == SCHEMA.resolve()
    assert schema_errors(REGISTRY.read_text()) == []


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (("overridable:", "overrideable:"), "'overrideable' was unexpected"),  # a typo'd key
        (("  penguins:\n", "  Penguins:\n"), "'Penguins' does not match any"),  # a bad name
        (("n_estimators: 100", "n-estimators: 100"), "'n-estimators' does not match any"),
        (("backend: local", "backend: sagemaker"), "'sagemaker' is not one of"),
        (("on_success: always", "on_success: sometimes"), "'sometimes' is not one of"),
        (("time_zone: Europe/Amsterdam", "time_zones: Europe/Amsterdam"), "'time_zone' is a"),
    ],
)
def test_a_registry_the_loader_refuses_fails_the_schema_too(
    edit: tuple[str, str], named: str
) -> None:
    text = REGISTRY.read_text()
    assert edit[0] in text
    broken = text.replace(edit[0], edit[1], 1)
    errors = schema_errors(broken)
    assert any(named in error for error in errors), errors
    with pytest.raises(RegistryError):  # the schema agrees with `mlrelay validate`
        parse_registry(broken, base_dir=REGISTRY.parent)
