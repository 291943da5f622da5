"""`backend: vertex_custom_job`: one CustomJob per run, created by the official `aiplatform_v1`
JobServiceClient over REST against the loopback Vertex AI (tests/fakes/vertex_custom_jobs.py),
the request JSON asserted as it reached the service. The service assigns the job's id, so a
redelivered DeployRequest, a lost ledger record and a create whose answer was lost (the
FaultProxy's LOSE) all find the run's job by its label: one job per run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mlrelay.config.settings import Settings
from mlrelay.errors import PermanentError
from mlrelay.ports.container import use_ports
from mlrelay.stage import keys
from mlrelay.stage.ledger import read_run
from mlrelay_tools.local.runtime import LocalRuntime
from tests.fakes.fault_proxy import LOSE, FaultProxy
from tests.fakes.vertex import FakeVertex
from tests.helpers import Capture, RecordingChat
from tests.integration.deployer.cancel_commands import cancel_command, known_run, send
from tests.integration.deployer.custom_job_deploys import (
    EVAL_IMAGE,
    IMAGE,
    custom_job_runtime,
)
from tests.integration.deployer.vertex_deploys import FINGERPRINT, OPTIONS, RUN_ID, deploy

JOBS = "/v1/projects/test-proj/locations/europe-west4/customJobs"
MANIFEST = f"gs://mlrelay-test/snapshots/penguins/{RUN_ID}/manifest.json"


@pytest.fixture
def proxy(vertex: FakeVertex) -> Iterator[FaultProxy]:
    vertex.reset()
    vertex.custom_jobs.reset()
    started = FaultProxy(vertex.endpoint.removeprefix("http://")).start()
    yield started
    started.stop()


@pytest.fixture
def runtime(
    settings: Settings, channel: RecordingChat, proxy: FaultProxy
) -> Iterator[LocalRuntime]:
    runtime = custom_job_runtime(settings, channel, proxy.url)
    known_run(runtime, RUN_ID)
    yield runtime
    use_ports(None)


@pytest.fixture
def events(runtime: LocalRuntime) -> Capture:
    capture = Capture(runtime.settings.topics.lifecycle)
    runtime.bus.listen(capture)
    return capture


def output_dir(runtime: LocalRuntime) -> str:
    return runtime.store.uri(keys.job_output(RUN_ID)).rstrip("/") + "/"


def test_deploy_creates_one_custom_job_exactly_as_the_registry_describes_it(
    runtime: LocalRuntime, events: Capture, vertex: FakeVertex
) -> None:
    deploy(runtime)

    [create] = vertex.custom_jobs.creates(vertex)
    assert create.path == JOBS
    # the REST transport sends enums as their numbers, and says so: the service reads them so
    assert create.query["$alt"] == ["json;enum-encoding=int"]
    out = output_dir(runtime)
    env = [
        {"name": "PENGUINS_SEED", "value": "42"},
        {"name": "PENGUINS_RUN", "value": RUN_ID},
        {"name": "MLRELAY_RUN_ID", "value": RUN_ID},
        {"name": "MLRELAY_PIPELINE", "value": "penguins"},
        {"name": "MLRELAY_SNAPSHOT_MANIFEST_URI", "value": MANIFEST},
        {"name": "MLRELAY_SNAPSHOT_FINGERPRINT", "value": FINGERPRINT},
        {"name": "MLRELAY_OUTPUT_DIR", "value": out},
    ]  # AIP_MODEL_DIR is Vertex AI's own, from baseOutputDirectory
    assert (
        create.body
        == {
            "displayName": RUN_ID,
            "jobSpec": {
                "workerPoolSpecs": [
                    {
                        "machineSpec": {
                            "machineType": "n1-standard-8",
                            "acceleratorType": 5,  # AcceleratorType.NVIDIA_TESLA_T4
                            "acceleratorCount": 1,
                        },
                        "replicaCount": "1",
                        "diskSpec": {"bootDiskType": "pd-ssd", "bootDiskSizeGb": 200},
                        "containerSpec": {
                            "imageUri": IMAGE,
                            "command": ["python", "-m", "penguins.train"],
                            "args": [
                                f"--manifest={MANIFEST}",
                                f"--fingerprint={FINGERPRINT}",
                                "--trees=200",
                                f"--out={out}",
                            ],
                            "env": env,
                        },
                    },
                    {
                        "machineSpec": {"machineType": "n1-highmem-4"},
                        "replicaCount": "2",
                        "diskSpec": {"bootDiskType": "pd-standard", "bootDiskSizeGb": 100},
                        "containerSpec": {
                            "imageUri": EVAL_IMAGE,
                            "command": ["python", "-m", "penguins.train"],
                            "args": ["--role=evaluator", f"--out={out}"],
                            "env": env,
                        },
                    },
                ],
                "scheduling": {
                    "timeout": "21600s",
                    "restartJobOnWorkerRestart": True,
                    "strategy": 4,  # Scheduling.Strategy.SPOT
                },
                "serviceAccount": OPTIONS.service_account,
                "network": OPTIONS.network,
                "baseOutputDirectory": {"outputUriPrefix": out},
            },
            "labels": {
                "mlrelay-run-id": RUN_ID,
                "mlrelay-pipeline": "penguins",
                "mlrelay-snapshot": FINGERPRINT[:32],
                "mlrelay-trigger": "schedule",
            },
            "encryptionSpec": {"kmsKeyName": OPTIONS.encryption_key_name},
        }
    )
    [listed] = vertex.custom_jobs.lists(vertex)  # looked for the run's job first
    assert listed.query["filter"] == [f'labels.mlrelay-run-id="{RUN_ID}"']

    [name] = vertex.custom_jobs.names()
    assert name.startswith("projects/123456789012/locations/europe-west4/customJobs/")
    record = read_run(runtime.store, RUN_ID)["pipeline"]
    assert record.result is not None
    assert record.result["job_name"] == name  # the service's name, with the project number
    assert record.result["outputs"] == {"model": f"{out}model/"}
    assert record.result["backend"] == "vertex_custom_job"
    assert events.types() == ["pipeline.submitted"]  # its end comes from the relay or watchdog
    job_id = name.rsplit("/", 1)[1]
    assert events.events[0].links["console"] == (
        "https://console.cloud.google.com/vertex-ai/locations/europe-west4/training/"
        f"{job_id}?project=test-proj"
    )


def test_three_deliveries_a_lost_record_and_lost_create_answers_make_one_custom_job(
    runtime: LocalRuntime, events: Capture, vertex: FakeVertex, proxy: FaultProxy
) -> None:
    # the first create reaches Vertex AI, which makes the job; its answer never comes back
    proxy.fail_next(LOSE, path="/customJobs", method="POST")

    for _ in range(3):
        deploy(runtime)

    assert len(vertex.custom_jobs.names()) == 1
    assert len(vertex.custom_jobs.creates(vertex)) == 1  # the retry looked first, found it
    [name] = vertex.custom_jobs.names()
    record = read_run(runtime.store, RUN_ID)["pipeline"]
    assert record.result is not None and record.result["job_name"] == name
    assert record.result["details"]["already_existed"] is True  # found: the lost answer's job

    # the deployer's ledger record is lost too, and the next answer of the lookup is lost: the
    # redelivered request looks again and finds the same job, three times over
    runtime.store.delete(keys.ledger(RUN_ID, "pipeline"))
    proxy.fail_next(LOSE, path="/customJobs", method="GET")
    for _ in range(3):
        deploy(runtime)

    assert vertex.custom_jobs.names() == [name]
    assert len(vertex.custom_jobs.creates(vertex)) == 1
    record = read_run(runtime.store, RUN_ID)["pipeline"]
    assert record.result is not None and record.result["job_name"] == name
    assert proxy.requests[str(LOSE)] == 2


def test_a_cancel_command_cancels_the_runs_custom_job_once_and_a_finished_one_is_refused(
    runtime: LocalRuntime, events: Capture, vertex: FakeVertex
) -> None:
    deploy(runtime)
    [name] = vertex.custom_jobs.names()

    send(runtime, cancel_command(RUN_ID), times=3)

    [cancel] = vertex.custom_jobs.cancels(vertex)
    assert cancel.path == f"/v1/{name}:cancel"  # the name the ledger recorded
    assert vertex.custom_jobs.job(name)["state"] == "JOB_STATE_CANCELLING"
    assert [e.event_type for e in events.events if e.status == "cancelled"] == [
        "pipeline.cancelled"
    ]

    # a finished job: Vertex AI answers FAILED_PRECONDITION, the command names the state
    backend = runtime.ports.pipeline_backend("penguins", lambda p: None)  # type: ignore[arg-type,return-value]
    vertex.custom_jobs.end_job(name, "succeeded", log=False)
    with pytest.raises(PermanentError, match="no longer running on Vertex AI"):
        backend.cancel(run_id=RUN_ID, job_name=name, requested={})
    vertex.custom_jobs.end_job(name, "cancelled", log=False)  # our earlier cancel, its end
    assert backend.cancel(run_id=RUN_ID, job_name="", requested={}) == "JOB_STATE_CANCELLED"
