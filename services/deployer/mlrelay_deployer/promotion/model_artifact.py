"""Where a successful run's model is: the pipeline ledger record's `outputs[<artifact>]` (every
local backend and the job backends put it there), or, for `backend: vertex`, the PipelineJob's
output artifact of that name."""

from __future__ import annotations

from typing import Any

from mlrelay.errors import PermanentError
from mlrelay.ports.container import Ports
from mlrelay.registry.specs import PipelineSpec
from mlrelay.stage import keys
from mlrelay.stage.records import StageRecord


def model_artifact(ports: Ports, spec: PipelineSpec, run_id: str) -> str:
    """The model's URI; a PermanentError naming `promotion.artifact` and the outputs the run has
    when it has none of that name."""
    assert spec.promotion is not None
    artifact = spec.promotion.artifact
    raw = ports.store.read(keys.ledger(run_id, "pipeline"))
    result: dict[str, Any] = (StageRecord.from_json(raw).result or {}) if raw else {}
    outputs = {str(k): str(v) for k, v in (result.get("outputs") or {}).items()}
    if outputs.get(artifact):
        return outputs[artifact]
    if spec.backend == "vertex" and spec.vertex is not None and result.get("job_name"):
        found = vertex_output(ports, spec, str(result["job_name"]), artifact)
        if found:
            return found
    has = ", ".join(sorted(outputs)) or "none"
    raise PermanentError(
        "promotion.artifact",
        f"the run has no output {artifact!r} (its outputs: {has})",
        "set `promotion.artifact` to the pipeline output that holds the model",
    )


def vertex_output(ports: Ports, spec: PipelineSpec, job_name: str, artifact: str) -> str | None:
    from mlrelay_deployer.vertex_endpoint import (  # type: ignore[import-not-found,unused-ignore]
        pipeline_output_uri,
    )

    assert spec.vertex is not None
    settings = ports.settings
    found: str | None = pipeline_output_uri(
        spec.vertex,
        job_name,
        artifact,
        endpoint=settings.deployer.vertex_endpoint,
        request_timeout_seconds=settings.http_timeout_seconds,
    )
    return found
