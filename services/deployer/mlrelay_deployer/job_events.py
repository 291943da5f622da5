"""The Vertex log relay: a pipeline job's end, as Cloud Logging records it, becomes its outcome.

The log sink (infra/modules/mlrelay/log_sink.tf) routes the `pipeline_job_events` log of
`aiplatform.googleapis.com/PipelineJob` resources, terminal states only, to the
`pipeline_job_events` topic; each message's data is one LogEntry as Cloud Logging writes it
(camelCase JSON: `insertId`, `logName`, `resource.type`, `resource.labels.pipeline_job_id`,
`resource.labels.location`, `timestamp`, `jsonPayload.state`, `labels`). Per entry:

1. the job id comes from `resource.labels.pipeline_job_id`; the log's payload is not trusted for
   the state: the job is read again (GetPipelineJob) for its labels and its authoritative state,
   failed task and error, start and end times;
2. a job without the `mlrelay-run-id` label was not started by mlrelay (hand-started, another
   tool): acknowledged with one log line and no event, so it can never loop;
3. the deployer creates the job with the run id as its id, so the run id is the job id: it must
   agree with the (sanitised, `deploy.label_value`) label and have the deployer's ledger record
   naming that job, else the job is another installation's and is skipped the same way; while
   that record is still being written (the job failed right after its create) the entry is
   redelivered (TransientError) until it names the job;
4. `report_job_outcome` publishes the one final event (or nothing: the exit handler, a cancel or
   an earlier delivery got there first). A success is left to the exit handler when the
   template has mlrelay's reporter (it took `mlrelay_lifecycle_destination`): a job only
   succeeds once its exit handler did, and that report carries the run's metrics.

The service's lines of a Vertex AI custom job (resource `ml_job`) come on the same topic and go
to `custom_job_events`: a custom job has no exit handler, so every end of it is relayed.

A malformed entry is rejected (PermanentError naming the field) and kept, like any message.
"""

from __future__ import annotations

from typing import Any

import structlog
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from mlrelay.contracts import Message, describe_validation_error
from mlrelay.errors import PermanentError, TransientError
from mlrelay.logs import bind_run
from mlrelay.ports.container import Ports
from mlrelay.registry.backends import VertexOptions
from mlrelay.stage.envelope import PubsubMessage
from mlrelay.stage.ledger import read_run
from mlrelay_deployer.custom_job_events import ML_JOB, relay_custom_job_event
from mlrelay_deployer.deploy import label_value
from mlrelay_deployer.job_outcome import report_job_outcome
from mlrelay_deployer.vertex_backend import VertexPipelineBackend, state_of_job

log = structlog.get_logger()

PIPELINE_JOB = "aiplatform.googleapis.com/PipelineJob"
RUN_LABEL = "mlrelay-run-id"
PIPELINE_LABEL = "mlrelay-pipeline"
REPORTER_INPUT = "mlrelay_lifecycle_destination"  # a template that takes it has the reporter


class LoggedResource(BaseModel):
    """LogEntry `resource`: the monitored resource the entry is about."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    type: str = Field(min_length=1)
    labels: dict[str, str] = Field(default_factory=dict)


class PipelineJobLogEntry(Message):
    """One Cloud Logging LogEntry of a Vertex AI PipelineJob, as the sink publishes it (fields
    Google's LogEntry reference names, camelCase; the ones the relay does not read are kept
    but ignored)."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)
    kind = "pipeline_job_log_entry"
    insert_id: str = Field(alias="insertId", min_length=1)
    log_name: str = Field(alias="logName", pattern=r"^projects/[^/]+/logs/.+$")
    timestamp: AwareDatetime
    resource: LoggedResource
    json_payload: dict[str, Any] = Field(default_factory=dict, alias="jsonPayload")
    labels: dict[str, str] = Field(default_factory=dict)

    @property
    def project(self) -> str:
        return self.log_name.split("/")[1]

    def job_name(self) -> str:
        """`projects/<p>/locations/<l>/pipelineJobs/<id>`; PermanentError naming what is missing."""
        if self.resource.type != PIPELINE_JOB:
            raise PermanentError(
                "resource.type",
                f"{self.resource.type!r} is not {PIPELINE_JOB}",
                "route only Vertex AI pipeline job logs to this topic (the sink's filter)",
            )
        for label in ("pipeline_job_id", "location"):
            if not self.resource.labels.get(label):
                raise PermanentError(
                    f"resource.labels.{label}",
                    "is missing from the log entry",
                    "publish the LogEntry as Cloud Logging's sink writes it",
                )
        labels = self.resource.labels
        return (
            f"projects/{self.project}/locations/{labels['location']}"
            f"/pipelineJobs/{labels['pipeline_job_id']}"
        )


def vertex_reader(ports: Ports, entry: PipelineJobLogEntry) -> VertexPipelineBackend:
    """A Vertex AI client for the entry's project and region (the job may be any pipeline's)."""
    try:
        options = VertexOptions(project=entry.project, region=entry.resource.labels["location"])
    except ValidationError as exc:
        field, problem = describe_validation_error(exc)[0]
        where = "logName" if field == "project" else "resource.labels.location"
        fix = "publish the LogEntry as Cloud Logging writes it"
        raise PermanentError(where, problem, fix) from None
    settings = ports.settings
    return VertexPipelineBackend(
        options,
        f"projects/{settings.project}/topics/{settings.topics.lifecycle}",
        endpoint=settings.deployer.vertex_endpoint,
        request_timeout_seconds=settings.http_timeout_seconds,
    )


def relay_job_event(entry: PipelineJobLogEntry, message: PubsubMessage, ports: Ports) -> bool:
    """Publish the ended job's outcome (see the module); True when this delivery published it."""
    name = entry.job_name()
    job_id = name.rsplit("/", 1)[1]
    logged = log.bind(job=name, logged_state=entry.json_payload.get("state"))
    reader = vertex_reader(ports, entry)
    job = reader.read_job(name)
    if job is None:
        logged.info("pipeline_job_event_ignored", why="Vertex AI has no such job (deleted?)")
        return False
    labels = dict(job.labels)
    if RUN_LABEL not in labels:
        logged.info("pipeline_job_event_ignored", why="no mlrelay-run-id label: not mlrelay's")
        return False
    run_id = job_id  # the deployer's pipeline_job_id is the run id (vertex_backend.start)
    if labels[RUN_LABEL] != label_value(run_id):
        logged.info("pipeline_job_event_ignored", why="its mlrelay-run-id label is not its id")
        return False
    records = read_run(ports.store, run_id)
    deploy, trigger = records.get("pipeline"), records.get("trigger")
    if deploy is not None and deploy.state == "running":
        # the deployer claims before it creates the job and records it after: a job that failed
        # at once can be logged in between. Come back once the record names the job.
        raise TransientError(f"{run_id}: the deployer has not recorded job {job_id} yet")
    recorded_job = str(((deploy.result if deploy else None) or {}).get("job_name") or "")
    if deploy is None or recorded_job.rsplit("/", 1)[-1] != job_id:
        logged.info("pipeline_job_event_ignored", why="no deploy of this job in this ledger")
        return False
    pipeline = str(
        ((trigger.result if trigger else None) or {}).get("pipeline")
        or labels.get(PIPELINE_LABEL, "")
    )
    options = reader.options
    if pipeline in ports.registry.pipelines:
        options = ports.registry.pipeline(pipeline).vertex or options
    state = state_of_job(job, options)
    if not state.terminal:  # the sink passes terminal states only; an old entry, say
        logged.info("pipeline_job_event_ignored", why=f"the job is {state.state} now")
        return False
    arguments = ((deploy.result or {}).get("arguments") or {}) if deploy else {}
    if state.status == "succeeded" and REPORTER_INPUT in arguments:
        # the job succeeded, so its exit handler ran and published the success with the run's
        # metrics: a success from here (no metrics) could settle the run first and be judged
        # against the gates without them
        logged.info("pipeline_job_event_ignored", why="its exit handler reports a success")
        return False
    with bind_run(run_id=run_id, pipeline=pipeline):
        return report_job_outcome(
            ports, run_id=run_id, pipeline=pipeline, state=state, reported_by="log_relay"
        )


def relay_for_entry(entry: PipelineJobLogEntry, message: PubsubMessage, ports: Ports) -> None:
    if entry.resource.type == ML_JOB:  # a custom job's service line (`vertex_custom_job`)
        relay_custom_job_event(entry, ports)
        return
    relay_job_event(entry, message, ports)
