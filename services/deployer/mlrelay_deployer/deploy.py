"""Start one pipeline run per run id, with the snapshot as a parameter.

A pipeline with `approval: before_deploy` is held first: one `pipeline.held` event, and the job
starts only once a person approves it (mlrelay_deployer.approval_gate, .approvals).

Events: `pipeline.submitted` once the backend has accepted the run (with its links), then one
`pipeline.succeeded` / `pipeline.failed`: from the pipeline's own exit handler (straight to the
lifecycle topic on Vertex AI and KFP hosts; through the local backend's outbox locally), or from
the deployer itself when the run could not start, or the local template has no exit handler.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict
from typing import Any

import structlog

from mlrelay.contracts import DeployRequest, LifecycleEvent
from mlrelay.ports.container import Ports
from mlrelay.stage import keys
from mlrelay.stage.echoes import mark_published, publish_event, re_request_of
from mlrelay.stage.envelope import PubsubMessage
from mlrelay.stage.ledger import run_once
from mlrelay_deployer.approval_gate import hold_for_approval
from mlrelay_deployer.backends import build_backend
from mlrelay_deployer.template_inputs import pipeline_arguments
from mlrelay_deployer.template_source import load_template

log = structlog.get_logger()
_NOT_LABEL = re.compile(r"[^a-z0-9_-]+")


def available_arguments(request: DeployRequest, completion_destination: str) -> dict[str, Any]:
    """Everything a template may ask for: effective parameters plus the snapshot's identity, so
    KFP's cache follows the data (a new fingerprint invalidates it, the same one reuses it), and
    what mlrelay's completion reporter needs."""
    return {
        **request.parameters,
        "run_id": request.run_id,
        "snapshot_manifest_uri": request.snapshot.manifest_uri,
        "snapshot_fingerprint": request.snapshot.fingerprint,
        "mlrelay_pipeline": request.pipeline,
        "mlrelay_lifecycle_destination": completion_destination,
    }


def label_value(value: str) -> str:
    """A Google Cloud label value (<= 63 of [a-z0-9_-]); a longer one keeps a hash of the rest."""
    clean = _NOT_LABEL.sub("-", value.lower())
    if len(clean) <= 63:
        return clean
    return f"{clean[:50]}-{hashlib.sha256(value.encode()).hexdigest()[:12]}"


def run_labels(request: DeployRequest) -> dict[str, str]:
    return {
        "mlrelay-run-id": label_value(request.run_id),
        "mlrelay-pipeline": label_value(request.pipeline),
        "mlrelay-snapshot": request.snapshot.fingerprint[:32],
        "mlrelay-trigger": request.trigger,
    }


def deploy_for_run(request: DeployRequest, message: PubsubMessage, ports: Ports) -> None:
    """The run's job, started once; a pipeline with `approval: before_deploy` is held first
    (mlrelay_deployer.approval_gate) and started by its approval."""
    if hold_for_approval(request, ports, ports.registry.pipeline(request.pipeline)):
        return
    start_pipeline(request, message, ports)


def start_pipeline(request: DeployRequest, message: PubsubMessage, ports: Ports) -> None:
    """Start the job once per run id (the ledger's `pipeline` claim) and say what came of it."""
    spec = ports.registry.pipeline(request.pipeline)
    template = ports.registry.template_location(request.pipeline)
    backend = ports.pipeline_backend(request.pipeline, lambda p: build_backend(p, spec))

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

    def submitted(links: dict[str, str], *, reused: bool) -> LifecycleEvent:
        return event(
            "submitted",
            f"pipeline {request.pipeline} submitted ({spec.backend})",
            links=links,
            details={"backend": spec.backend, "template": template, "reused": reused},
        )

    def announce(links: dict[str, str]) -> None:
        ports.publish(submitted(links, reused=False))

    def work() -> dict[str, Any]:
        available = available_arguments(request, backend.completion_destination(request.run_id))
        if spec.runs_job:  # a job's entry takes any of them by name (mlrelay.registry.jobs)
            arguments, pinned = available, ""
        else:
            loaded = load_template(template)  # a tag resolves once: the backend gets the digest
            arguments, pinned = pipeline_arguments(loaded, available), loaded.pinned_uri
        outcome = backend.start(
            run_id=request.run_id,
            pipeline=request.pipeline,
            template=pinned,
            parameters=arguments,
            labels=run_labels(request),
            announce=announce,
        )
        return {**asdict(outcome), "arguments": arguments, "backend": spec.backend}

    outcome = run_once(
        ports.store,
        keys.ledger(request.run_id, "pipeline"),
        "pipeline",
        work,
        lease=ports.settings.claim_lease,
    )
    re_request = re_request_of(message)
    if outcome.record.state == "failed":
        publish_event(
            ports,
            outcome,
            event(
                "failed",
                "pipeline could not be started",
                error=outcome.record.error,
                details={"field": outcome.record.error_field},
            ),
            re_request,
        )
        return
    result = outcome.result
    if result["status"] == "submitted":
        if outcome.reused:  # a duplicate: say again what was done (unless heard), nothing more
            links = {**result.get("links", {})}
            publish_event(ports, outcome, submitted(links, reused=True), re_request)
        else:  # `announce` published `submitted` before the record was done
            mark_published(ports, request.run_id, "pipeline")
        log.info("pipeline_submitted", job=result.get("job_name"), reused=outcome.reused)
        return
    if result["status"] == "cancelled":  # the local run, stopped by a cancel command
        requested = dict(result.get("details", {}).get("command") or {})
        cancelled = event(
            "cancelled",
            f"pipeline cancelled by {requested.get('requested_by', 'a cancel command')}",
            links=dict(result.get("links") or {}),
            details={"command": requested},
        )  # the cancel command reports the same event: the notifier posts it once
        publish_event(ports, outcome, cancelled, re_request)
        log.info("pipeline_cancelled", reused=outcome.reused)
        return
    publish_event(ports, outcome, final_event(request, result, reused=outcome.reused), re_request)
    log.info("pipeline_reported", status=result["status"], reused=outcome.reused)


def final_event(request: DeployRequest, result: dict[str, Any], *, reused: bool) -> LifecycleEvent:
    """The run's one succeeded/failed event: the exit handler's report when the pipeline has one
    (with the local runner's figures, links and its precise failed task added), else our own."""
    figures = {**result["metrics"], "duration_seconds": round(result["duration_seconds"], 1)}
    links = result.get("links", {})
    details: dict[str, Any] = {"outputs": result["outputs"], "reused": reused}
    failed_task = result["failed_task"]
    if result["status"] == "failed":
        details = {"failed_task": failed_task, "reused": reused}
    completion = result.get("completion")
    if completion:
        reported = LifecycleEvent.model_validate(completion["data"])
        # kfp.local's final status names only the exit handler's group; its runner names the task
        task = failed_task or reported.details.get("failed_task")
        update: dict[str, Any] = {
            "figures": figures,
            "links": links,
            "details": {**reported.details, **details, "failed_task": task},
            "parameters": request.parameters,
            "trigger": request.trigger,
        }
        if reported.status == "failed":
            update["summary"] = f"pipeline failed at {task or 'a task'}"
            update["error"] = result["error"] or reported.error
        else:
            update["details"].pop("failed_task")
        return reported.model_copy(update=update)
    succeeded = result["status"] == "succeeded"
    return LifecycleEvent(
        run_id=request.run_id,
        pipeline=request.pipeline,
        stage="pipeline",
        status="succeeded" if succeeded else "failed",
        summary=(
            f"pipeline {request.pipeline} succeeded"
            if succeeded
            else f"pipeline failed at {failed_task or 'a task'}"
        ),
        error=None if succeeded else result["error"],
        trigger=request.trigger,
        parameters=request.parameters,
        figures=figures if succeeded else {},
        links=links,
        details=details,
    )
