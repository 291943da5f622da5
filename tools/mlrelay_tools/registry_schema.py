"""Render the JSON Schema of the pipeline registry from its pydantic models.

    python -m mlrelay_tools.registry_schema > docs/registry.schema.json

Editors validate a registry as you type with it (the example registry names it in a
`# yaml-language-server: $schema=...` line). A test compares the checked-in file with this
rendering, so a registry key added to `mlrelay.registry.specs` without regenerating fails the
suite. The schema holds the shape (keys, types, patterns, choices); `mlrelay validate` checks
the rest (cron fields, time zones, one of `table` or `sql`, names across sections).
"""

from __future__ import annotations

import json
from typing import Any

from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from mlrelay.registry.specs import Registry

SCHEMA_FILE = "docs/registry.schema.json"


class _RegistryJsonSchema(GenerateJsonSchema):
    def dict_schema(self, schema: core_schema.DictSchema) -> JsonSchemaValue:
        """A mapping whose keys have a pattern (pipeline names, parameter names) refuses other
        keys, as the model does; pydantic alone would let them through."""
        out = super().dict_schema(schema)
        if "patternProperties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out


def registry_schema() -> dict[str, Any]:
    body = Registry.model_json_schema(schema_generator=_RegistryJsonSchema)
    return {
        "$schema": _RegistryJsonSchema.schema_dialect,
        "title": "mlrelay pipeline registry",
        "description": (
            "Every pipeline mlrelay may run (docs/registry.md). Generated from "
            "mlrelay.registry.specs by `python -m mlrelay_tools.registry_schema`; "
            "`mlrelay validate` checks what a schema cannot."
        ),
        **{k: v for k, v in body.items() if k != "title"},
    }


def render() -> str:
    return json.dumps(registry_schema(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    print(render(), end="")
