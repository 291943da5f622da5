"""The KFP host backend: the real `kfp.Client` against a loopback server that plays a KFP host's
v2beta1 API (tests/fakes/kfp.py); request bodies are checked against kfp-server-api's models."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlrelay.errors import PermanentError, TransientError
from mlrelay.ports.protocols import PipelineOutcome
from mlrelay.registry.backends import KfpOptions, KfpRecurringOptions
from mlrelay_deployer.kfp_backend import KfpHostBackend
from tests.fakes.kfp import PREFIX, FakeKfp, check_body
from tests.helpers import PENGUINS_TEMPLATE

RUN_ID = "penguins-demo-1-0123456789ab"
PARAMETERS = {
    "run_id": RUN_ID,
    "snapshot_manifest_uri": f"gs://mlrelay-test/snapshots/penguins/{RUN_ID}/manifest.json",
    "snapshot_fingerprint": "f" * 64,
    "n_estimators": 200,
    "mlrelay_pipeline": "penguins",
    "mlrelay_lifecycle_destination": "projects/test-proj/topics/mlrelay-lifecycle",
}
MODELS = {
    "/experiments": "V2beta1Experiment",
    "/runs": "V2beta1Run",
    "/recurringruns": "V2beta1RecurringRun",
}


@pytest.fixture
def kfp_host() -> Iterator[FakeKfp]:
    with FakeKfp() as fake:
        yield fake


def make_backend(fake: FakeKfp, **options: Any) -> KfpHostBackend:
    settings = KfpOptions(host=fake.host, pipeline_root="gs://mlrelay-test/kfp-root", **options)
    return KfpHostBackend(
        settings, "projects/test-proj/topics/mlrelay-lifecycle", backoff_seconds=0.01
    )


def start(backend: KfpHostBackend, run_id: str = RUN_ID, template: Path = PENGUINS_TEMPLATE) -> Any:
    announced: list[dict[str, str]] = []
    outcome: PipelineOutcome = backend.start(
        run_id=run_id,
        pipeline="penguins",
        template=str(template),
        parameters={**PARAMETERS, "run_id": run_id},
        labels={},
        announce=announced.append,
    )
    assert announced == [outcome.links]
    return outcome


def assert_bodies_match_the_api(fake: FakeKfp) -> None:
    for request in fake.requests:
        suffix = request.path.removeprefix(PREFIX)
        if request.method == "POST" and suffix in MODELS:
            assert check_body(request.body, MODELS[suffix]) == [], (suffix, request.body)


def test_first_deploy_uploads_pipeline_and_version_then_starts_the_named_run(
    kfp_host: FakeKfp,
) -> None:
    outcome = start(make_backend(kfp_host))

    assert [p["display_name"] for p in kfp_host.pipelines.values()] == ["penguins"]
    [upload_version] = kfp_host.posts("/pipelines/upload_version")
    digest_name = upload_version.query["name"][0]
    assert digest_name.startswith("sha256-") and len(digest_name) == 7 + 16
    uploaded = yaml.safe_load(upload_version.body["uploadfile"])
    assert uploaded["pipelineInfo"]["name"] == "penguins-training"
    [experiment] = kfp_host.experiments.values()
    assert experiment["display_name"] == "penguins"
    [run] = kfp_host.runs.values()
    assert run["display_name"] == RUN_ID
    assert run["experiment_id"] == experiment["experiment_id"]
    assert run["runtime_config"] == {
        "parameters": {**PARAMETERS},
        "pipeline_root": "gs://mlrelay-test/kfp-root",
    }
    assert run["pipeline_version_reference"] == {
        "pipeline_id": outcome.details["pipeline_id"],
        "pipeline_version_id": outcome.details["pipeline_version_id"],
    }
    assert outcome.status == "submitted"
    assert outcome.links == {"kfp": f"{kfp_host.host}/#/runs/details/{run['run_id']}"}
    assert_bodies_match_the_api(kfp_host)


def test_duplicate_deploy_starts_no_second_run_and_uploads_no_second_version(
    kfp_host: FakeKfp,
) -> None:
    backend = make_backend(kfp_host)
    first = start(backend)
    second = start(make_backend(kfp_host))  # a fresh client, as after a cold start
    third = start(backend, run_id="penguins-demo-2-0123456789ab")  # same template, new run

    assert second.job_name == first.job_name
    assert second.details["already_existed"] is True
    assert len(kfp_host.posts("/runs")) == 2
    assert len(kfp_host.posts("/pipelines/upload")) == 1
    assert len(kfp_host.posts("/pipelines/upload_version")) == 1
    assert third.details["pipeline_version_id"] == first.details["pipeline_version_id"]
    assert len(kfp_host.posts("/experiments")) == 1


def test_changed_template_becomes_a_new_version(kfp_host: FakeKfp, tmp_path: Path) -> None:
    changed = tmp_path / "penguins_pipeline.yaml"
    changed.write_text(
        PENGUINS_TEMPLATE.read_text().replace("Train and evaluate", "Train, evaluate")
    )
    first = start(make_backend(kfp_host))
    second = start(make_backend(kfp_host), run_id="penguins-demo-2-0123456789ab", template=changed)

    assert second.details["pipeline_version"] != first.details["pipeline_version"]
    assert len(kfp_host.posts("/pipelines/upload_version")) == 2


def test_recurring_deploy_replaces_the_schedule_without_a_gap(kfp_host: FakeKfp) -> None:
    recurring = KfpRecurringOptions(cron="0 0 6 * * 1", max_concurrency=1, catchup=False)
    backend = make_backend(kfp_host, recurring=recurring)

    first = start(backend)
    start(backend)  # duplicate: nothing new
    second = start(backend, run_id="penguins-demo-2-0123456789ab")

    creates = kfp_host.posts("/recurringruns")
    assert len(creates) == 2
    body = creates[0].body
    assert body["trigger"] == {"cron_schedule": {"cron": "0 0 6 * * 1"}}
    assert body["max_concurrency"] == 1
    assert body["no_catchup"] is True
    assert body["mode"] == "ENABLE"
    assert body["display_name"] == RUN_ID
    assert [r["display_name"] for r in kfp_host.recurring_runs.values()] == [
        "penguins-demo-2-0123456789ab"
    ]
    deletes = [r for r in kfp_host.requests if r.method == "DELETE"]
    assert [d.path for d in deletes] == [f"{PREFIX}/recurringruns/{first.job_name}"]
    # the new schedule was created before the old one was deleted
    order = [(r.method, r.path) for r in kfp_host.requests]
    assert order.index(("POST", f"{PREFIX}/recurringruns")) < order.index(
        ("DELETE", deletes[0].path)
    )
    assert second.details["kind"] == "recurring_run"
    assert_bodies_match_the_api(kfp_host)


def test_caching_override_is_baked_into_its_own_version(kfp_host: FakeKfp) -> None:
    outcome = start(make_backend(kfp_host, enable_caching=False))

    [upload] = kfp_host.posts("/pipelines/upload_version")
    uploaded = yaml.safe_load(upload.body["uploadfile"])
    tasks = [
        task
        for component in [uploaded["root"], *uploaded["components"].values()]
        for task in component.get("dag", {}).get("tasks", {}).values()
    ]
    assert tasks and all(t["cachingOptions"] == {"enableCache": False} for t in tasks)
    assert outcome.details["pipeline_version"].endswith("-cache-off")


def test_transient_errors_are_retried_then_the_run_starts(kfp_host: FakeKfp) -> None:
    backend = make_backend(kfp_host)
    backend.client  # noqa: B018 - connect first, so the failures hit the deploy calls
    kfp_host.fail_next(503, "upstream connect error")
    kfp_host.fail_next(429, "too many requests")

    outcome = start(backend)

    assert outcome.status == "submitted"
    assert len(kfp_host.runs) == 1


def test_persistent_5xx_asks_for_redelivery(kfp_host: FakeKfp) -> None:
    backend = make_backend(kfp_host)
    backend.client  # noqa: B018
    kfp_host.fail_next(500, "internal error", times=10)

    with pytest.raises(TransientError, match="500"):
        start(backend)
    assert kfp_host.runs == {}


def test_refusal_is_permanent_with_the_hosts_message(kfp_host: FakeKfp) -> None:
    backend = make_backend(kfp_host)
    backend.client  # noqa: B018
    kfp_host.fail_next(400, "Invalid input error: pipeline spec is invalid")

    with pytest.raises(PermanentError, match="pipeline spec is invalid"):
        start(backend)


def test_model_check_catches_a_field_the_api_does_not_have() -> None:
    assert check_body({"display_name": "x", "labels": {"a": "b"}}, "V2beta1Run") == [
        "$.labels: not a field of V2beta1Run"
    ]
    assert check_body({"mode": "SOMETIMES"}, "V2beta1RecurringRun")[0].startswith("$.mode:")
    assert (
        check_body(json.loads('{"runtime_config": {"parameters": {"a": 1}}}'), "V2beta1Run") == []
    )


def test_unreachable_host_asks_for_redelivery() -> None:
    from tests.integration.peers import free_port

    options = KfpOptions(host=f"http://127.0.0.1:{free_port()}")
    backend = KfpHostBackend(options, "projects/p/topics/t", backoff_seconds=0.01)

    with pytest.raises(TransientError, match="KFP connect"):
        start(backend)
