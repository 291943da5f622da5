"""Start one pipeline run per run id, with the snapshot as a parameter."""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta
from typing import Any

import structlog

from mlrelay.contracts import DeployRequest, LifecycleEvent
from mlrelay.envelope import PubsubMessage
from mlrelay.ledger import ledger_key, run_once
from mlrelay.wiring import Ports
from mlrelay_deployer.backends import build_backend
from mlrelay_deployer.template_inputs import pipeline_arguments

log = structlog.get_logger()


def available_arguments(request: DeployRequest) -> dict[str, Any]:
    """Everything a template may ask for: effective parameters plus the snapshot's identity, so
    KFP's cache follows the data (a new fingerprint invalidates it, the same one reuses it)."""
    return {
        **request.parameters,
        "run_id": request.run_id,
        "snapshot_manifest_uri": request.snapshot.manifest_uri,
        "snapshot_fingerprint": request.snapshot.fingerprint,
    }


def deploy_for_run(request: DeployRequest, message: PubsubMessage, ports: Ports) -> None:
    spec = ports.registry.pipeline(request.pipeline)
    template = ports.registry.template_location(request.pipeline)
    backend = ports.component(
        f"pipeline-backend:{spec.backend}", lambda p: build_backend(p, spec.backend)
    )

    def event(status: Any, summary: str, **extra: Any) -> LifecycleEvent:
        return LifecycleEvent(
            run_id=request.run_id,
            pipeline=request.pipeline,
            stage="pipeline",
            status=status,
            summary=summary,
            trigger=request.trigger,
            parameters=request.parameters,
            **extra,
        )

    def work() -> dict[str, Any]:
        arguments = pipeline_arguments(template, available_arguments(request))
        ports.publish(
            event(
                "submitted",
                f"pipeline {request.pipeline} submitted ({spec.backend})",
                details={"backend": spec.backend, "template": template},
            )
        )
        outcome = backend.start(
            run_id=request.run_id,
            pipeline=request.pipeline,
            template=template,
            parameters=arguments,
        )
        return {**asdict(outcome), "arguments": arguments, "backend": spec.backend}

    outcome = run_once(
        ports.store, ledger_key(request.run_id, "deploy"), "deploy", work, lease=timedelta(hours=2)
    )
    if outcome.record.state == "failed":
        ports.publish(
            event(
                "failed",
                "pipeline could not be started",
                error=outcome.record.error,
                details={"field": outcome.record.error_field},
            )
        )
        return
    result = outcome.result
    links = result.get("links", {})
    if result["status"] == "succeeded":
        ports.publish(
            event(
                "succeeded",
                f"pipeline {request.pipeline} succeeded",
                figures={
                    **result["metrics"],
                    "duration_seconds": round(result["duration_seconds"], 1),
                },
                links=links,
                details={"outputs": result["outputs"], "reused": outcome.reused},
            )
        )
    elif result["status"] == "failed":
        ports.publish(
            event(
                "failed",
                f"pipeline failed at {result['failed_task'] or 'a task'}",
                error=result["error"],
                links=links,
                details={"failed_task": result["failed_task"], "reused": outcome.reused},
            )
        )
    log.info("pipeline_reported", status=result["status"], reused=outcome.reused)
