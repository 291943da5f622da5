"""The embedded model registry and endpoint: one version per run however often uploaded, the
deployed models and split in one file, Vertex AI's traffic rules, every call safe to repeat after
a lost answer (two processes at once: tests/integration/adapters/test_embedded_endpoint_race.py)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from mlrelay.adapters.embedded_endpoint import (
    EmbeddedEndpoint,
    model_file,
    read_endpoint,
)
from mlrelay.errors import PermanentError
from mlrelay.ports.protocols import NEW_DEPLOYMENT, DeployedModel, EndpointState
from mlrelay.registry.specs import PromotionSpec

SPEC = PromotionSpec(model="penguins", endpoint="penguins-endpoint")


def job_model(tmp_path: Path, name: str, content: object = "estimator") -> str:
    """A job's `$AIP_MODEL_DIR`: a folder with model.pkl, as a file:// URI ending in `/`."""
    folder = tmp_path / "jobs" / name / "model"
    folder.mkdir(parents=True)
    (folder / "model.pkl").write_bytes(pickle.dumps(content))
    return folder.as_uri() + "/"


@pytest.fixture
def endpoint(tmp_path: Path) -> EmbeddedEndpoint:
    return EmbeddedEndpoint(tmp_path / "home", SPEC)


def test_upload_copies_the_model_and_the_same_run_gets_the_same_version(
    tmp_path: Path, endpoint: EmbeddedEndpoint
) -> None:
    first = endpoint.upload(run_id="run-a", artifact_uri=job_model(tmp_path, "a"), labels={})
    again = endpoint.upload(run_id="run-a", artifact_uri=job_model(tmp_path, "a2"), labels={})
    second = endpoint.upload(run_id="run-b", artifact_uri=job_model(tmp_path, "b"), labels={})

    assert (first.name, first.version_id, first.run_id) == ("penguins@1", "1", "run-a")
    assert again == first  # a repeat after a lost answer: no second version
    assert (second.name, second.version_id) == ("penguins@2", "2")
    copied = tmp_path / "home" / "models" / "penguins" / "1" / "model.pkl"
    assert copied.read_bytes() == pickle.dumps("estimator")
    assert first.artifact_uri == copied.parent.as_uri() + "/"
    assert model_file(tmp_path / "home", "penguins@2").parent.name == "2"
    assert sorted(p.name for p in (tmp_path / "home" / "models" / "penguins").iterdir()) == [
        "1", "2", "versions.json", "versions.json.lock",
    ]  # fmt: skip


def test_upload_takes_one_pickle_file_as_a_kfp_model_artifact(
    tmp_path: Path, endpoint: EmbeddedEndpoint
) -> None:
    artifact = tmp_path / "root" / "train" / "model"
    artifact.parent.mkdir(parents=True)
    artifact.write_bytes(pickle.dumps({"kfp": True}))

    version = endpoint.upload(run_id="run-k", artifact_uri=str(artifact), labels={"a": "b"})

    loaded = model_file(tmp_path / "home", version.name)
    assert loaded.name == "model.pkl" and loaded.read_bytes() == pickle.dumps({"kfp": True})
    about = json.loads((loaded.parent / "version.json").read_text())
    assert about == {"run_id": "run-k", "artifact_uri": str(artifact), "labels": {"a": "b"}}


@pytest.mark.parametrize(
    ("artifact", "problem"),
    [
        ("gs://bucket/jobs/r/model/", "is not on this machine"),
        ("/nowhere/model/", "does not exist"),
    ],
)
def test_an_artifact_it_cannot_read_is_a_permanent_error_naming_it(
    endpoint: EmbeddedEndpoint, artifact: str, problem: str
) -> None:
    with pytest.raises(PermanentError, match=problem) as caught:
        endpoint.upload(run_id="run-x", artifact_uri=artifact, labels={})
    assert caught.value.field == "artifact_uri"
    assert not (endpoint.models_dir / "versions.json").exists()


def test_a_folder_without_a_model_file_is_refused(
    tmp_path: Path, endpoint: EmbeddedEndpoint
) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(PermanentError, match=r"holds no model\.pkl or model\.joblib"):
        endpoint.upload(run_id="run-e", artifact_uri=(tmp_path / "empty").as_uri(), labels={})


def test_the_first_deploy_serves_everything_and_a_canary_keeps_the_champion(
    tmp_path: Path, endpoint: EmbeddedEndpoint
) -> None:
    assert endpoint.state() == EndpointState("penguins-endpoint", (), {})
    champion = endpoint.upload(run_id="run-a", artifact_uri=job_model(tmp_path, "a"), labels={})
    challenger = endpoint.upload(run_id="run-b", artifact_uri=job_model(tmp_path, "b"), labels={})

    first = endpoint.deploy(version=champion, traffic={NEW_DEPLOYMENT: 100})
    canary = endpoint.deploy(version=challenger, traffic={"penguins-1": 90, NEW_DEPLOYMENT: 10})

    assert first.traffic == {"penguins-1": 100}
    assert canary.deployed == (
        DeployedModel("penguins-1", "penguins@1", "run-a"),
        DeployedModel("penguins-2", "penguins@2", "run-b"),
    )
    assert canary.traffic == {"penguins-1": 90, "penguins-2": 10}
    assert read_endpoint(tmp_path / "home", "penguins-endpoint") == canary  # it is the file
    assert endpoint.state() == canary


def test_a_repeated_deploy_after_a_lost_answer_deploys_nothing_twice(
    tmp_path: Path, endpoint: EmbeddedEndpoint
) -> None:
    champion = endpoint.upload(run_id="run-a", artifact_uri=job_model(tmp_path, "a"), labels={})
    challenger = endpoint.upload(run_id="run-b", artifact_uri=job_model(tmp_path, "b"), labels={})
    endpoint.deploy(version=champion, traffic={NEW_DEPLOYMENT: 100})
    split = {"penguins-1": 90, NEW_DEPLOYMENT: 10}

    once = endpoint.deploy(version=challenger, traffic=split)
    twice = endpoint.deploy(version=challenger, traffic=split)

    assert twice == once
    assert len(twice.deployed) == 2


def test_promote_and_roll_back_move_the_split_and_undeploy_the_challenger(
    tmp_path: Path, endpoint: EmbeddedEndpoint
) -> None:
    champion = endpoint.upload(run_id="run-a", artifact_uri=job_model(tmp_path, "a"), labels={})
    challenger = endpoint.upload(run_id="run-b", artifact_uri=job_model(tmp_path, "b"), labels={})
    endpoint.deploy(version=champion, traffic={NEW_DEPLOYMENT: 100})
    endpoint.deploy(version=challenger, traffic={"penguins-1": 90, NEW_DEPLOYMENT: 10})

    promoted = endpoint.set_traffic({"penguins-1": 0, "penguins-2": 100})
    assert promoted.traffic == {"penguins-1": 0, "penguins-2": 100}
    assert endpoint.set_traffic({"penguins-1": 0, "penguins-2": 100}) == promoted  # repeated

    rolled_back = endpoint.undeploy(deployed_model_id="penguins-2", traffic={"penguins-1": 100})
    again = endpoint.undeploy(deployed_model_id="penguins-2", traffic={"penguins-1": 100})

    assert rolled_back.deployed == (DeployedModel("penguins-1", "penguins@1", "run-a"),)
    assert rolled_back.traffic == {"penguins-1": 100}
    assert again == rolled_back  # a model no longer deployed is success


def test_undeploy_without_a_split_keeps_it_when_the_model_served_nothing(
    tmp_path: Path, endpoint: EmbeddedEndpoint
) -> None:
    champion = endpoint.upload(run_id="run-a", artifact_uri=job_model(tmp_path, "a"), labels={})
    challenger = endpoint.upload(run_id="run-b", artifact_uri=job_model(tmp_path, "b"), labels={})
    endpoint.deploy(version=champion, traffic={NEW_DEPLOYMENT: 100})
    endpoint.deploy(version=challenger, traffic={"penguins-1": 90, NEW_DEPLOYMENT: 10})

    with pytest.raises(PermanentError, match="sums to 90") as caught:  # it served 10 %: say where
        endpoint.undeploy(deployed_model_id="penguins-2", traffic={})
    assert caught.value.field == "traffic"
    endpoint.set_traffic({"penguins-1": 0, "penguins-2": 100})

    kept = endpoint.undeploy(deployed_model_id="penguins-1", traffic={})
    assert kept.traffic == {"penguins-2": 100}
    last = endpoint.undeploy(deployed_model_id="penguins-2", traffic={})
    assert last == EndpointState("penguins-endpoint", (), {})


@pytest.mark.parametrize(
    ("split", "problem"),
    [
        ({"penguins-1": 90, NEW_DEPLOYMENT: 20}, "sums to 110, not 100"),
        ({"penguins-1": 90, "penguins-9": 10}, "penguins-9 is not deployed"),
        ({"penguins-1": 110, NEW_DEPLOYMENT: -10}, "give whole percentages"),
    ],
)
def test_a_bad_split_is_a_permanent_error_naming_traffic_and_changes_nothing(
    tmp_path: Path, endpoint: EmbeddedEndpoint, split: dict[str, int], problem: str
) -> None:
    champion = endpoint.upload(run_id="run-a", artifact_uri=job_model(tmp_path, "a"), labels={})
    challenger = endpoint.upload(run_id="run-b", artifact_uri=job_model(tmp_path, "b"), labels={})
    before = endpoint.deploy(version=champion, traffic={NEW_DEPLOYMENT: 100})

    with pytest.raises(PermanentError, match=problem) as caught:
        endpoint.deploy(version=challenger, traffic=split)

    assert caught.value.field == "traffic"
    assert endpoint.state() == before
    with pytest.raises(PermanentError, match="not deployed"):
        endpoint.set_traffic({"penguins-2": 100})


def test_a_relative_home_as_mlrelay_home_defaults_to_serves_file_uris(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # MLRELAY_HOME defaults to `.mlrelay`: a relative path has no file:// URI of its own
    monkeypatch.chdir(tmp_path)
    endpoint = EmbeddedEndpoint(Path(".mlrelay"), SPEC)
    version = endpoint.upload(run_id="run-a", artifact_uri=job_model(tmp_path, "a"), labels={})
    assert version.artifact_uri == (tmp_path / ".mlrelay/models/penguins/1").as_uri() + "/"
