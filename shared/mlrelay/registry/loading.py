"""Loading the pipeline registry: YAML text to typed specs.

Loading reports *every* problem at once, each with file, line and field, so `mlrelay validate`
is useful in a pull request. Paths inside the file are relative to the file. The specs it loads
into live in `mlrelay.registry.specs`, the checks beyond the schema in `mlrelay.registry.checks`;
`mlrelay.registry` re-exports what callers need.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from mlrelay.contracts import PIPELINE_NAME_PATTERN, describe_validation_error
from mlrelay.errors import ConfigurationError
from mlrelay.registry.checks import Found, group_problems, pipeline_problems
from mlrelay.registry.specs import (
    PipelineSpec,
    Registry,
)


@dataclass(frozen=True)
class RegistryProblem:
    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field}: {self.message}"


class RegistryError(ConfigurationError):
    """The registry file cannot be read, parsed or validated; every problem is listed."""

    def __init__(self, problems: list[RegistryProblem]) -> None:
        self.problems = problems
        first = problems[0]
        super().__init__(
            first.field,
            "\n".join(str(p) for p in problems),
            "fix the registry file and run `mlrelay validate`",
        )


def _line_of(doc: Any, path: tuple[str | int, ...]) -> int:
    """1-based line of the deepest part of `path` that exists in the ruamel document."""
    node, line = doc, 1
    for part in path:
        lc = getattr(node, "lc", None)
        try:
            if isinstance(part, int) and isinstance(node, list) and part < len(node):
                line = (lc.item(part)[0] if lc else line - 1) + 1
                node = node[part]
            elif isinstance(node, dict) and part in node:
                line = (lc.key(part)[0] if lc else line - 1) + 1
                node = node[part]
            else:
                break
        except (KeyError, IndexError, TypeError):
            break
    return line


def _validation_problems(exc: ValidationError, prefix: tuple[str | int, ...]) -> list[Found]:
    found: list[Found] = []
    for err in exc.errors(include_url=False):
        single = ValidationError.from_exception_data(exc.title, [err])  # type: ignore[list-item]
        text = describe_validation_error(single)[0][1]
        text = text.removeprefix("Value error, ")
        if err["type"] == "value_error":  # a model-level check: the input is the whole mapping
            text = text.split(" (got {")[0]
        loc = tuple(p for p in err["loc"] if p != "[key]")
        found.append(((*prefix, *loc), text))
    return found


def parse_registry(text: str, file: str = "<registry>", base_dir: Path | None = None) -> Registry:
    """Validate registry YAML text; all problems are raised together in a `RegistryError`."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    base = base_dir or Path()
    try:
        raw = YAML(typ="rt").load(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        raise RegistryError(
            [RegistryProblem(file, line, "(yaml)", str(exc).splitlines()[0])]
        ) from None
    if not isinstance(raw, dict) or not isinstance(raw.get("pipelines"), dict):
        raise RegistryError(
            [
                RegistryProblem(
                    file, 1, "pipelines", "expected a mapping `pipelines:` of name -> pipeline"
                )
            ]
        )
    found: list[Found] = []
    extra = {k: v for k, v in raw.items() if k != "pipelines"}
    try:
        Registry.model_validate({**extra, "pipelines": {}})
    except ValidationError as exc:
        found += _validation_problems(exc, ())
    specs: dict[str, PipelineSpec] = {}
    for name, raw_spec in raw["pipelines"].items():
        at: tuple[str | int, ...] = ("pipelines", name)
        if not isinstance(name, str) or not re.match(PIPELINE_NAME_PATTERN, name):
            found.append(
                (
                    at,
                    f"the name {name!r} must be lowercase letters, digits and hyphens, "
                    "starting with a letter (at most 40)",
                )
            )
        try:
            spec = PipelineSpec.model_validate(raw_spec)
        except ValidationError as exc:
            found += _validation_problems(exc, at)
            continue
        found += pipeline_problems(str(name), spec, base)
        specs[str(name)] = spec
    found += group_problems(extra.get("groups"), specs)
    if found:
        raise RegistryError(
            [
                RegistryProblem(file, _line_of(raw, path), ".".join(map(str, path)), message)
                for path, message in found
            ]
        )
    return Registry.model_validate({**extra, "pipelines": specs, "base_dir": base})


def load_registry(path: str | Path) -> Registry:
    file = Path(path)
    try:
        text = file.read_text()
    except OSError as exc:
        raise RegistryError(
            [RegistryProblem(str(file), 0, "(file)", f"cannot read: {exc.strerror}")]
        ) from None
    return parse_registry(text, str(file), file.parent.resolve())
