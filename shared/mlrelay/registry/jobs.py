"""A plain job's entry (`job:` in a pipeline entry): the container command a `vertex_custom_job`
runs on Vertex AI custom training, and a `local_job` runs as a child process on this machine.

The same entry, the same arguments and environment in both: `{name}` in an argument or an
environment value is replaced by the run's value of that name (a registry parameter, `run_id`,
`pipeline`, `snapshot_manifest_uri`, `snapshot_fingerprint`, `output_dir`); `{{` and `}}` are
literal braces. A name the run has no value for is an error naming the argument.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from mlrelay.errors import PermanentError

EnvName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


class JobEntry(BaseModel):
    """What the job runs: the container's image (Vertex AI only) and its command and args."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Artifact Registry image, e.g. europe-docker.pkg.dev/<project>/<repo>/train:1.4 (a digest
    # pins it); a `local_job` runs the command on this machine and ignores the image
    image: str | None = None
    # the container's entrypoint; locally, `python` / `python3` as the first word is the
    # interpreter mlrelay runs under, and a relative path resolves against the registry's folder
    command: list[str] = Field(min_length=1)
    args: list[str] = Field(default_factory=list)
    env: dict[EnvName, str] = Field(default_factory=dict)


@dataclass(frozen=True)
class RenderedEntry:
    command: list[str]
    args: list[str]
    env: dict[str, str]


def render_entry(entry: JobEntry, values: Mapping[str, Any], *, at: str = "job") -> RenderedEntry:
    """`entry` with every `{name}` replaced by `values[name]` (booleans as `true`/`false`)."""

    def one(text: str, field: str) -> str:
        try:
            names = [name for _, name, _, _ in string.Formatter().parse(text) if name is not None]
        except ValueError as error:
            raise PermanentError(
                field,
                f"{text!r} is not a valid template ({error})",
                "write `{name}` for a value, `{{` and `}}` for braces",
            ) from None
        missing = [name for name in names if name not in values]
        if missing:
            known = ", ".join(sorted(values))
            raise PermanentError(
                field,
                f"{{{missing[0]}}} names no value of this run",
                f"use one of: {known}",
            )
        return text.format_map({name: _text(values[name]) for name in names})

    return RenderedEntry(
        command=[one(part, f"{at}.command[{i}]") for i, part in enumerate(entry.command)],
        args=[one(arg, f"{at}.args[{i}]") for i, arg in enumerate(entry.args)],
        env={key: one(value, f"{at}.env.{key}") for key, value in entry.env.items()},
    )


RUN_VALUES = (
    "run_id",
    "pipeline",
    "snapshot_manifest_uri",
    "snapshot_fingerprint",
    "output_dir",
    "mlrelay_pipeline",
    "mlrelay_lifecycle_destination",
)
"""The names every run has a value for, beside the pipeline's parameters."""


def entry_problems(entry: JobEntry, parameters: Mapping[str, Any]) -> list[tuple[str, str]]:
    """What `render_entry` would refuse at every run, found now (`mlrelay validate`): a malformed
    `{...}` or a name no run has a value for; (field, message) pairs."""
    values = {name: "" for name in (*RUN_VALUES, *parameters)}
    problems: list[tuple[str, str]] = []
    for field, part in (
        *((f"command[{i}]", text) for i, text in enumerate(entry.command)),
        *((f"args[{i}]", text) for i, text in enumerate(entry.args)),
        *((f"env.{key}", text) for key, text in entry.env.items()),
    ):
        try:
            render_entry(JobEntry(command=[part]), values, at="")
        except PermanentError as error:
            problems.append((field, f"{error.problem} ({error.fix})"))
    return problems


MODEL_OUTPUT = "model"
"""The output a job's model is: the folder `$AIP_MODEL_DIR` (`<output_dir>model/`)."""
METRICS_FILE = "metrics.json"
"""What a job writes in `$MLRELAY_OUTPUT_DIR` for the gates: one JSON object of numbers."""


def job_values(arguments: Mapping[str, Any], output_dir: str) -> dict[str, Any]:
    """The names a job's entry may use: the deployer's arguments (parameters, `run_id`,
    `snapshot_manifest_uri`, `snapshot_fingerprint`, `mlrelay_pipeline`) plus `pipeline` and
    `output_dir` (the run's folder for the model and metrics, ending in `/`)."""
    return {
        **arguments,
        "pipeline": arguments.get("mlrelay_pipeline", ""),
        "output_dir": output_dir,
    }


def job_environment(values: Mapping[str, Any]) -> dict[str, str]:
    """The environment every job gets, wherever it runs (Vertex AI sets `AIP_MODEL_DIR` itself
    from the job's base output directory: the same folder)."""
    output_dir = str(values["output_dir"])
    return {
        "MLRELAY_RUN_ID": str(values["run_id"]),
        "MLRELAY_PIPELINE": str(values["pipeline"]),
        "MLRELAY_SNAPSHOT_MANIFEST_URI": str(values["snapshot_manifest_uri"]),
        "MLRELAY_SNAPSHOT_FINGERPRINT": str(values["snapshot_fingerprint"]),
        "MLRELAY_OUTPUT_DIR": output_dir,
        "AIP_MODEL_DIR": f"{output_dir}{MODEL_OUTPUT}/",
    }


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
