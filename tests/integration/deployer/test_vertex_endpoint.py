"""Promotion on Vertex AI: `VertexModelEndpoint` (the official `aiplatform_v1` clients over REST)
against the loopback Model Registry and endpoint (tests/fakes/vertex_models.py), behind a
FaultProxy that loses answers: the exact request JSON, one model version per run and one deployed
model per promotion under repeats and lost answers, the canary, promote and roll back splits."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from mlrelay.errors import ConfigurationError, PermanentError, TransientError
from mlrelay.ports.protocols import EndpointState, ModelVersion
from mlrelay.registry.backends import VertexOptions
from mlrelay.registry.specs import PromotionSpec
from mlrelay_deployer.vertex_endpoint import (
    VertexModelEndpoint,
    deployed_model_id,
    pipeline_output_uri,
)
from tests.fakes.fault_proxy import LOSE, FaultProxy
from tests.fakes.vertex import FakeVertex, Recorded

OPTIONS = VertexOptions(project="test-proj", region="europe-west4")
LOCATION = "projects/test-proj/locations/europe-west4"
MODEL = f"{LOCATION}/models/penguins"
ENDPOINT = f"{LOCATION}/endpoints/4321"
IMAGE = "europe-docker.pkg.dev/vertex-ai/prediction/sklearn-cpu.1-5:latest"
PROMOTION = PromotionSpec(
    model="penguins",
    endpoint="4321",
    canary_percent=10,
    serving_image=IMAGE,
    machine_type="n1-standard-4",
    min_replicas=1,
    max_replicas=3,
)
CHAMPION, CHALLENGER = "penguins-20261130-0123456789ab", "penguins-20261201-ba9876543210"


def model_folder(run_id: str) -> str:
    return f"gs://mlrelay-test/jobs/{run_id}/model/"


@pytest.fixture
def proxy(vertex: FakeVertex) -> Iterator[FaultProxy]:
    vertex.reset()
    vertex.models.reset()
    vertex.models.add_endpoint(ENDPOINT)
    proxy = FaultProxy(vertex.endpoint.removeprefix("http://"), "vertex").start()
    yield proxy
    proxy.stop()


@pytest.fixture
def endpoint(proxy: FaultProxy) -> VertexModelEndpoint:
    return VertexModelEndpoint(
        OPTIONS, PROMOTION, pipeline="penguins", endpoint=proxy.url,
        request_timeout_seconds=5.0, retry_deadline_seconds=6.0,
    )  # fmt: skip


def upload(endpoint: VertexModelEndpoint, run_id: str) -> ModelVersion:
    return endpoint.upload(
        run_id=run_id, artifact_uri=model_folder(run_id), labels={"mlrelay-trigger": "schedule"}
    )


def calls(vertex: FakeVertex, method: str, suffix: str) -> list[Recorded]:
    return [r for r in vertex.requests if r.method == method and r.path.endswith(suffix)]


def uploads(vertex: FakeVertex) -> list[Recorded]:
    return calls(vertex, "POST", "/models:upload")


def deploys(vertex: FakeVertex) -> list[Recorded]:
    return calls(vertex, "POST", ":deployModel")


def with_champion(endpoint: VertexModelEndpoint) -> tuple[ModelVersion, EndpointState]:
    version = upload(endpoint, CHAMPION)
    return version, endpoint.deploy(version=version, traffic={"0": 100})


def test_the_first_upload_makes_the_model_and_the_next_run_a_new_version_of_it(
    endpoint: VertexModelEndpoint, vertex: FakeVertex
) -> None:
    first = upload(endpoint, CHAMPION)
    second = upload(endpoint, CHALLENGER)

    assert first == ModelVersion(f"{MODEL}@1", "1", CHAMPION, model_folder(CHAMPION))
    assert second == ModelVersion(f"{MODEL}@2", "2", CHALLENGER, model_folder(CHALLENGER))
    # the run's version by its alias first, then the model itself, then the upload
    assert [(r.method, r.path) for r in vertex.requests[:3]] == [
        ("GET", f"/v1/{MODEL}%40{CHAMPION}"),
        ("GET", f"/v1/{MODEL}"),
        ("POST", f"/v1/{LOCATION}/models:upload"),
    ]
    made, added = (r.body for r in uploads(vertex))
    model = {
        "displayName": "penguins",
        "artifactUri": model_folder(CHAMPION),
        "containerSpec": {"imageUri": IMAGE},
        "labels": {
            "mlrelay-trigger": "schedule",
            "mlrelay-run-id": CHAMPION,
            "mlrelay-pipeline": "penguins",
        },
        "versionAliases": [CHAMPION],
        "versionDescription": f"mlrelay run {CHAMPION}",
    }
    assert made == {"model": model, "modelId": "penguins"}
    assert added == {
        "model": {
            **model,
            "artifactUri": model_folder(CHALLENGER),
            "labels": {**model["labels"], "mlrelay-run-id": CHALLENGER},
            "versionAliases": [CHALLENGER],
            "versionDescription": f"mlrelay run {CHALLENGER}",
        },
        "parentModel": MODEL,
    }
    versions = vertex.models.models[MODEL]
    assert [v["versionAliases"] for v in versions] == [["default", CHAMPION], [CHALLENGER]]


def test_three_uploads_and_a_lost_answer_make_one_version_per_run(
    endpoint: VertexModelEndpoint, vertex: FakeVertex, proxy: FaultProxy
) -> None:
    for _ in range(3):
        assert upload(endpoint, CHAMPION).version_id == "1"
    proxy.fail_next(LOSE, path="/models:upload", method="POST")
    for _ in range(3):
        assert upload(endpoint, CHALLENGER).version_id == "2"

    assert proxy.pending_faults() == 0 and proxy.requests[str(LOSE)] == 1
    assert len(uploads(vertex)) == 2  # the lost one's retry found its version by alias
    assert [v["versionId"] for v in vertex.models.models[MODEL]] == ["1", "2"]


def test_the_first_deployment_takes_all_traffic_with_the_exact_request(
    endpoint: VertexModelEndpoint, vertex: FakeVertex
) -> None:
    version, state = with_champion(endpoint)

    chosen = deployed_model_id(ENDPOINT, CHAMPION)
    [deploy] = deploys(vertex)
    assert deploy.path == f"/v1/{ENDPOINT}:deployModel"
    assert deploy.body == {
        "deployedModel": {
            "id": chosen,
            "model": f"{MODEL}@1",
            "displayName": CHAMPION,
            "dedicatedResources": {
                "machineSpec": {"machineType": "n1-standard-4"},
                "minReplicaCount": 1,
                "maxReplicaCount": 3,
            },
        },
        "trafficSplit": {"0": 100},
    }
    assert state.endpoint == ENDPOINT
    assert state.traffic == {chosen: 100}
    [deployed] = state.deployed
    assert (deployed.id, deployed.model, deployed.run_id) == (chosen, version.name, CHAMPION)
    assert endpoint.state() == state


def test_three_deploys_and_a_lost_answer_deploy_one_model(
    endpoint: VertexModelEndpoint, vertex: FakeVertex, proxy: FaultProxy
) -> None:
    version = upload(endpoint, CHAMPION)
    proxy.fail_next(LOSE, path=":deployModel", method="POST")

    states = [endpoint.deploy(version=version, traffic={"0": 100}) for _ in range(3)]

    assert proxy.requests[str(LOSE)] == 1
    assert len(deploys(vertex)) == 1  # the retry found the deployment; so did the repeats
    assert len(vertex.models.endpoint(ENDPOINT)["deployedModels"]) == 1
    assert states[0] == states[1] == states[2]
    assert not calls(vertex, "PATCH", ENDPOINT)  # the split was already right


def test_a_deployment_still_under_way_is_never_made_twice_by_a_redelivery(
    proxy: FaultProxy, vertex: FakeVertex
) -> None:
    """DeployModel takes minutes on the service: the wait ends first, the message is redelivered
    while the deployment is under way (not yet on the endpoint), and its second DeployModel,
    with the same deployed model id, is refused; once it is done the next delivery finds it."""
    slow = VertexModelEndpoint(
        OPTIONS, PROMOTION, pipeline="penguins", endpoint=proxy.url,
        retry_deadline_seconds=3.0, operation_timeout_seconds=1.0,
    )  # fmt: skip
    version = upload(slow, CHAMPION)
    vertex.models.hold_deployments = True

    with pytest.raises(TransientError, match="DeployModel is still under way"):
        slow.deploy(version=version, traffic={"0": 100})
    with pytest.raises(TransientError, match="409 to DeployModel"):
        slow.deploy(version=version, traffic={"0": 100})
    assert "deployedModels" not in vertex.models.endpoint(ENDPOINT)
    assert any(r.method == "GET" and "/operations/" in r.path for r in vertex.requests)  # polled

    vertex.models.finish_deployments()
    state = slow.deploy(version=version, traffic={"0": 100})

    [first, second] = deploys(vertex)
    assert first.body == second.body  # the same id both times
    assert state.traffic == {deployed_model_id(ENDPOINT, CHAMPION): 100}
    assert len(vertex.models.endpoint(ENDPOINT)["deployedModels"]) == 1


def test_a_canary_then_a_roll_back_restores_the_previous_split_exactly(
    endpoint: VertexModelEndpoint, vertex: FakeVertex, proxy: FaultProxy
) -> None:
    _, before = with_champion(endpoint)
    champion = before.deployed[0].id
    challenger = upload(endpoint, CHALLENGER)

    canary = endpoint.deploy(version=challenger, traffic={"0": 10, champion: 90})

    new = deployed_model_id(ENDPOINT, CHALLENGER)
    assert deploys(vertex)[-1].body["trafficSplit"] == {"0": 10, champion: 90}
    assert canary.traffic == {champion: 90, new: 10}
    assert {d.id: d.run_id for d in canary.deployed} == {champion: CHAMPION, new: CHALLENGER}

    proxy.fail_next(LOSE, path=":undeployModel", method="POST")
    after = endpoint.undeploy(deployed_model_id=new, traffic=before.traffic)

    undeploys = calls(vertex, "POST", ":undeployModel")
    assert [r.body for r in undeploys] == [
        {"deployedModelId": new, "trafficSplit": {champion: 100}}
    ] * 2  # the lost answer's retry: NOT_FOUND, which is success
    assert after.traffic == before.traffic == vertex.models.endpoint(ENDPOINT)["trafficSplit"]
    assert after == before


def test_promote_moves_all_traffic_and_undeploys_the_old_champion(
    endpoint: VertexModelEndpoint, vertex: FakeVertex, proxy: FaultProxy
) -> None:
    _, before = with_champion(endpoint)
    champion = before.deployed[0].id
    canary = endpoint.deploy(version=upload(endpoint, CHALLENGER), traffic={"0": 10, champion: 90})
    new = next(d.id for d in canary.deployed if d.id != champion)

    proxy.fail_next(LOSE, method="PATCH")
    for _ in range(3):
        moved = endpoint.set_traffic({new: 100, champion: 0})
    promoted = endpoint.undeploy(deployed_model_id=champion, traffic={new: 100})

    patches = calls(vertex, "PATCH", ENDPOINT)
    assert len(patches) == 4  # lost, its retry, then two repeats: the same split each time
    for patch in patches:  # the name travels in the path only (the transport takes it out)
        assert patch.path == f"/v1/{ENDPOINT}" and patch.query["updateMask"] == ["trafficSplit"]
        assert patch.body == {"trafficSplit": {new: 100, champion: 0}}
    assert moved.traffic == {new: 100, champion: 0}
    assert promoted.traffic == {new: 100}
    assert [(d.id, d.run_id) for d in promoted.deployed] == [(new, CHALLENGER)]


def test_undeploying_a_model_that_serves_traffic_without_a_new_split_is_refused(
    endpoint: VertexModelEndpoint,
) -> None:
    _, before = with_champion(endpoint)
    champion = before.deployed[0].id
    canary = endpoint.deploy(version=upload(endpoint, CHALLENGER), traffic={"0": 10, champion: 90})
    new = next(d.id for d in canary.deployed if d.id != champion)

    with pytest.raises(PermanentError) as refused:
        endpoint.undeploy(deployed_model_id=new, traffic={})

    assert refused.value.field == "promotion.endpoint"
    assert "400" in refused.value.problem and "has traffic assigned" in refused.value.problem
    assert endpoint.state() == canary


def test_a_split_that_does_not_sum_to_100_is_the_services_refusal(
    endpoint: VertexModelEndpoint,
) -> None:
    _, before = with_champion(endpoint)

    with pytest.raises(PermanentError, match="must be 100, got 90"):
        endpoint.set_traffic({before.deployed[0].id: 90})


def test_403_is_our_missing_grant_redelivered_naming_the_permission(
    endpoint: VertexModelEndpoint, vertex: FakeVertex
) -> None:
    vertex.models.fail_next(
        403,
        f"Permission 'aiplatform.models.upload' denied on resource '//aiplatform.googleapis.com/"
        f"{LOCATION}' (or it may not exist).",
        path="/models:upload",
    )

    # the deployer's IAM, not the run: redelivered until granted, never a failed promotion
    with pytest.raises(ConfigurationError) as refused:
        upload(endpoint, CHAMPION)

    assert refused.value.field == "promotion.model"
    assert "403" in refused.value.problem
    assert "aiplatform.models.upload (roles/aiplatform.user)" in refused.value.fix
    assert len(uploads(vertex)) == 1  # not retried


def test_503_is_retried_and_beyond_the_deadline_asks_for_redelivery(
    endpoint: VertexModelEndpoint, vertex: FakeVertex
) -> None:
    version = upload(endpoint, CHAMPION)
    vertex.models.fail_next(503, "The service is currently unavailable.", path=":deployModel")

    state = endpoint.deploy(version=version, traffic={"0": 100})

    assert len(deploys(vertex)) == 2 and len(state.deployed) == 1
    vertex.models.fail_next(503, "The service is currently unavailable.", path=ENDPOINT, times=50)
    with pytest.raises(TransientError, match="did not answer GetEndpoint"):
        endpoint.state()


def test_no_serving_image_is_a_permanent_error_before_any_request(
    proxy: FaultProxy, vertex: FakeVertex
) -> None:
    bare = VertexModelEndpoint(
        OPTIONS, PROMOTION.model_copy(update={"serving_image": None}), pipeline="penguins",
        endpoint=proxy.url,
    )  # fmt: skip

    with pytest.raises(PermanentError) as refused:
        upload(bare, CHAMPION)

    assert refused.value.field == "promotion.serving_image"
    assert vertex.requests == []


def test_an_unknown_endpoint_names_the_field_and_how_to_make_it(
    proxy: FaultProxy,
) -> None:
    elsewhere = VertexModelEndpoint(
        OPTIONS, PROMOTION.model_copy(update={"endpoint": "999"}), pipeline="penguins",
        endpoint=proxy.url,
    )  # fmt: skip

    with pytest.raises(PermanentError) as refused:
        elsewhere.state()

    assert refused.value.field == "promotion.endpoint"
    assert "google_vertex_ai_endpoint" in refused.value.fix


def test_a_model_deployed_by_hand_is_nobodys_run(
    endpoint: VertexModelEndpoint, vertex: FakeVertex
) -> None:
    """A deployment whose display name looks like a run id but whose version lacks that run's
    label (deployed in the console): `run_id` None, so it is never taken for a run's model."""
    version, _ = with_champion(endpoint)
    vertex.models.models[MODEL][0]["labels"] = {}

    [deployed] = endpoint.state().deployed

    assert deployed.model == version.name and deployed.run_id is None


JOB = f"{LOCATION}/pipelineJobs/penguins-20261201-ba9876543210"


def job_with_tasks(vertex: FakeVertex, tasks: list[dict[str, Any]]) -> None:
    vertex.add_job(JOB)
    vertex.jobs[JOB]["jobDetail"] = {"taskDetails": tasks}


def artifacts(name: str, uri: str) -> dict[str, Any]:
    return {name: {"artifacts": [{"name": f"{LOCATION}/metadataStores/default/a", "uri": uri}]}}


def test_pipeline_output_uri_finds_the_named_output_of_the_jobs_tasks(
    proxy: FaultProxy, vertex: FakeVertex
) -> None:
    job_with_tasks(
        vertex,
        [
            {"taskId": "1", "taskName": "penguins"},
            {"taskId": "2", "parentTaskId": "1", "taskName": "preprocess",
             "outputs": artifacts("train_data", "gs://root/preprocess/train_data")},
            {"taskId": "3", "parentTaskId": "1", "taskName": "train",
             "outputs": {**artifacts("model", "gs://root/train/model"),
                         **artifacts("metrics", "gs://root/train/metrics")}},
        ],
    )  # fmt: skip

    found = pipeline_output_uri(OPTIONS, JOB, "model", endpoint=proxy.url)
    absent = pipeline_output_uri(OPTIONS, JOB, "exported_model", endpoint=proxy.url)

    assert found == "gs://root/train/model"
    assert absent is None
    assert [(r.method, r.path) for r in vertex.requests] == [("GET", f"/v1/{JOB}")] * 2


def test_pipeline_output_uri_prefers_the_pipelines_own_output(
    proxy: FaultProxy, vertex: FakeVertex
) -> None:
    job_with_tasks(
        vertex,
        [
            {"taskId": "3", "parentTaskId": "1", "taskName": "train",
             "outputs": artifacts("model", "gs://root/train/model")},
            {"taskId": "1", "taskName": "penguins",
             "outputs": artifacts("model", "gs://root/exported/model")},
        ],
    )  # fmt: skip

    assert pipeline_output_uri(OPTIONS, JOB, "model", endpoint=proxy.url) == (
        "gs://root/exported/model"
    )
    assert pipeline_output_uri(OPTIONS, f"{LOCATION}/pipelineJobs/gone", "model",
                               endpoint=proxy.url) is None  # fmt: skip


def test_pipeline_output_uri_refused_names_the_permission(
    proxy: FaultProxy, vertex: FakeVertex
) -> None:
    job_with_tasks(vertex, [])
    proxy.fail_next(403, path="/pipelineJobs/")

    with pytest.raises(ConfigurationError) as refused:  # the deployer's IAM: redelivered
        pipeline_output_uri(OPTIONS, JOB, "model", endpoint=proxy.url)

    assert "aiplatform.pipelineJobs.get" in refused.value.fix
