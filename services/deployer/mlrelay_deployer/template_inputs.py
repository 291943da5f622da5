"""Which parameters a compiled KFP pipeline template accepts, and the run's values for them."""

from __future__ import annotations

from typing import Any

from mlrelay.errors import PermanentError
from mlrelay_deployer.template_source import PipelineTemplate, load_template


def template_parameters(template: str | PipelineTemplate) -> dict[str, bool]:
    """Input parameter name -> whether it is optional (has a default)."""
    loaded = load_template(template) if isinstance(template, str) else template
    return {
        name: bool(p.get("isOptional") or "defaultValue" in p)
        for name, p in loaded.input_parameters().items()
    }


def pipeline_arguments(
    template: str | PipelineTemplate, available: dict[str, Any]
) -> dict[str, Any]:
    """The template's inputs taken from `available`; a required input without value is an error."""
    accepted = template_parameters(template)
    missing = [
        name for name, optional in accepted.items() if not optional and name not in available
    ]
    if missing:
        raise PermanentError(
            "template",
            f"inputs {', '.join(sorted(missing))} have no value",
            "add them to the pipeline's `parameters` in the registry",
        )
    return {name: value for name, value in available.items() if name in accepted}
