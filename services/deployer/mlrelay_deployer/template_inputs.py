"""Read which parameters a compiled KFP pipeline template accepts."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from mlrelay.errors import PermanentError


@lru_cache(maxsize=32)
def template_parameters(template: str) -> dict[str, bool]:
    """Input parameter name -> whether it is optional (has a default)."""
    import yaml

    path = Path(template)
    try:
        docs = list(yaml.safe_load_all(path.read_text()))
    except OSError as exc:
        raise PermanentError(
            "template",
            f"cannot read {template}: {exc.strerror}",
            "compile the pipeline or fix `template` in the registry",
        ) from None
    spec: dict[str, Any] = docs[0] if docs else {}
    params = spec.get("root", {}).get("inputDefinitions", {}).get("parameters", {})
    return {name: bool(p.get("isOptional") or "defaultValue" in p) for name, p in params.items()}


def pipeline_arguments(template: str, available: dict[str, Any]) -> dict[str, Any]:
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
