"""The log relay for Vertex AI custom jobs (`backend: vertex_custom_job`): the service's own log
line at a job's end becomes the run's outcome, success included (a custom job has no exit
handler).

The log sink routes the entries of the `ml_job` monitored resource written by the service itself
(`resource.labels.task_name` "service": "Job completed successfully.", "Job failed."...; see
docs/custom-jobs.md) to the same topic as the PipelineJob events; `job_events.relay_for_entry`
hands those here. An `ml_job` entry names the job's numeric id (`resource.labels.job_id`) and
the project (`logName`), not its region, so the job is read (GetCustomJob) in each region the
registry's `vertex_custom_job` pipelines of that project use. Then, as for a PipelineJob:

1. a job without mlrelay's `mlrelay-run-id` label, or whose label is not its display name's
   (the run id, `deploy.label_value`), was not started by mlrelay: one log line, no event;
2. the deployer's ledger record of that run must name this job, else it is another
   installation's (or a PipelineJob's inner job carrying its labels) and is skipped the same
   way; while the record is still being written the entry is redelivered (TransientError);
3. the job's state is read from the service, not from the line; a job not over is ignored (the
   sink passes the service's lines of a running job too);
4. `report_job_outcome` publishes the one final event, with the metrics of the run's
   `jobs/<run_id>/metrics.json` on a success.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

import structlog

from mlrelay.errors import PermanentError, TransientError
from mlrelay.logs import bind_run
from mlrelay.ports.container import Ports
from mlrelay.ports.protocols import PipelineBackend
from mlrelay.registry import PipelineSpec
from mlrelay.stage.ledger import read_run
from mlrelay_deployer.backends import build_backend
from mlrelay_deployer.custom_job_backend import RUN_LABEL, state_of_custom_job
from mlrelay_deployer.deploy import label_value
from mlrelay_deployer.job_outcome import report_job_outcome

if TYPE_CHECKING:
    from mlrelay_deployer.job_events import PipelineJobLogEntry

log = structlog.get_logger()

ML_JOB = "ml_job"  # the monitored resource of Vertex AI custom (training) jobs
SERVICE_TASK = "service"  # `task_name` of the lines the service writes itself


def custom_job_id(entry: PipelineJobLogEntry) -> str:
    job_id = entry.resource.labels.get("job_id", "")
    if not job_id.isdigit():
        raise PermanentError(
            "resource.labels.job_id",
            f"{job_id!r} is not a custom job's numeric id",
            "publish the LogEntry as Cloud Logging's sink writes it",
        )
    return job_id


def find_custom_job(ports: Ports, project: str, job_id: str) -> tuple[str, Any, Any] | None:
    """(pipeline, its backend, the job) for custom job `job_id` of `project`, read in the regions
    of the registry's `vertex_custom_job` pipelines there; None when none has it."""
    tried: set[str] = set()
    for name, spec in sorted(ports.registry.pipelines.items()):
        options = spec.vertex
        if spec.backend != "vertex_custom_job" or options is None or options.project != project:
            continue
        if options.region in tried:
            continue
        tried.add(options.region)
        backend: Any = ports.pipeline_backend(name, partial(_build, spec=spec))
        job = backend.read_job(f"projects/{project}/locations/{options.region}/customJobs/{job_id}")
        if job is not None:
            return name, backend, job
    return None


def _build(ports: Ports, *, spec: PipelineSpec) -> PipelineBackend:
    return build_backend(ports, spec)


def relay_custom_job_event(entry: PipelineJobLogEntry, ports: Ports) -> bool:
    """Publish the ended custom job's outcome (see the module); True when this delivery did."""
    job_id = custom_job_id(entry)
    logged = log.bind(custom_job=job_id, line=entry.resource.labels.get("task_name"))
    if entry.resource.labels.get("task_name") != SERVICE_TASK:
        logged.info("custom_job_event_ignored", why="a replica's own line, not the service's")
        return False
    found = find_custom_job(ports, entry.project, job_id)
    if found is None:
        logged.info("custom_job_event_ignored", why="no such job in the registry's regions")
        return False
    name_of_pipeline, backend, job = found
    name = str(job.name)
    labels = dict(job.labels)
    run_id = str(job.display_name)
    if RUN_LABEL not in labels or labels[RUN_LABEL] != label_value(run_id):
        logged.info("custom_job_event_ignored", why="no mlrelay-run-id label of its name")
        return False
    records = read_run(ports.store, run_id)
    deploy, trigger = records.get("pipeline"), records.get("trigger")
    if deploy is not None and deploy.state == "running":
        raise TransientError(f"{run_id}: the deployer has not recorded custom job {job_id} yet")
    recorded_job = str(((deploy.result if deploy else None) or {}).get("job_name") or "")
    if deploy is None or recorded_job.rsplit("/", 1)[-1] != job_id:
        logged.info("custom_job_event_ignored", why="no deploy of this job in this ledger")
        return False
    pipeline = str(((trigger.result if trigger else None) or {}).get("pipeline") or "")
    pipeline = pipeline or name_of_pipeline
    state = state_of_custom_job(job, backend.options)
    if not state.terminal:
        logged.info("custom_job_event_ignored", why=f"the job is {state.state} now", job=name)
        return False
    with bind_run(run_id=run_id, pipeline=pipeline):
        return report_job_outcome(
            ports, run_id=run_id, pipeline=pipeline, state=state, reported_by="log_relay"
        )
