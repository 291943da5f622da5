"""A deliberately failing pipeline with mlrelay's completion reporter in its exit handler.

Kept in its own module without `from __future__ import annotations`: kfp reads the component
signatures' annotations as types, not strings.
"""

from pathlib import Path

from kfp import compiler, dsl

from mlrelay.kfp_components import completion_reporter


def compile_failing_variant(path: Path) -> Path:
    """A two-step pipeline with mlrelay's reporter whose second step always fails."""

    @dsl.component(base_image="python:3.11-slim")
    def prepare(run_id: str) -> str:
        return f"prepared {run_id}"

    @dsl.component(base_image="python:3.11-slim")
    def explode(note: str) -> None:
        raise RuntimeError(f"deliberate failure after {note!r}")

    @dsl.pipeline(name="failing-variant")
    def failing_variant(
        run_id: str, mlrelay_pipeline: str = "", mlrelay_lifecycle_destination: str = ""
    ) -> None:
        report = completion_reporter("python:3.11-slim")(
            run_id=run_id, pipeline=mlrelay_pipeline, destination=mlrelay_lifecycle_destination
        )
        with dsl.ExitHandler(report):
            explode(note=prepare(run_id=run_id).output)

    compiler.Compiler().compile(failing_variant, str(path))
    return path
