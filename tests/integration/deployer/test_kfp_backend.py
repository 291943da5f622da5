"""The KFP host backend: the real `kfp.Client` against a loopback server that plays a KFP host's
v2beta1 API (tests/fakes/kfp.py); request bodies are checked against kfp-server-api's models."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlrelay.adapters.local_folder import LocalFolderStore
from mlrelay.config.deployer import DeployerSettings
from mlrelay.config.env import Secret, read_section
from mlrelay.config.settings import Settings
from mlrelay.contracts import DeployRequest, LifecycleEvent, SnapshotRef
from mlrelay.errors import ConfigurationError, PermanentError, TransientError
from mlrelay.ports.container import Ports, use_ports
from mlrelay.ports.protocols import PipelineOutcome
from mlrelay.registry import load_registry
from mlrelay.registry.backends import KfpOptions, KfpRecurringOptions
from mlrelay.stage.doorway import RedeliverAfterFix
from mlrelay.stage.envelope import PubsubMessage, to_cloudevent
from mlrelay_deployer.entry import on_deploy_request
from mlrelay_deployer.kfp_backend import KfpHostBackend, kfp_client_class
from tests.fakes.kfp import PREFIX, FakeKfp, bearer, check_body
from tests.fakes.oauth_token import FakeTokenEndpoint
from tests.helpers import PENGUINS_TEMPLATE, REGISTRY, RecordingPublisher

RUN_ID = "penguins-demo-1-0123456789ab"
PARAMETERS = {
    "run_id": RUN_ID,
    "snapshot_manifest_uri": f"gs://mlrelay-test/snapshots/penguins/{RUN_ID}/manifest.json",
    "snapshot_fingerprint": "f" * 64,
    "n_estimators": 200,
    "mlrelay_pipeline": "penguins",
    "mlrelay_lifecycle_destination": "projects/test-proj/topics/mlrelay-lifecycle",
}
IAP_CLIENT_ID = "123456789012-abcdefghijklmnopqrstuvwxyz012345.apps.googleusercontent.com"
MODELS = {
    "/experiments": "V2beta1Experiment",
    "/runs": "V2beta1Run",
    "/recurringruns": "V2beta1RecurringRun",
}


@pytest.fixture
def kfp_host() -> Iterator[FakeKfp]:
    with FakeKfp() as fake:
        yield fake


def make_backend(
    fake: FakeKfp, *, tokens: dict[str, Secret] | None = None, **options: Any
) -> KfpHostBackend:
    settings = KfpOptions(host=fake.host, pipeline_root="gs://mlrelay-test/kfp-root", **options)
    return KfpHostBackend(
        settings, "projects/test-proj/topics/mlrelay-lifecycle", tokens=tokens, backoff_seconds=0.01
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


# --- a host that asks for credentials -------------------------------------------------------


@pytest.fixture
def token() -> str:
    return secrets.token_urlsafe(24)  # made up per test: no secret lives in the tests


@pytest.fixture
def guarded_host(token: str) -> Iterator[FakeKfp]:
    with FakeKfp(token=token) as fake:
        yield fake


def test_host_asking_for_a_bearer_token_gets_the_named_one_and_the_run_starts(
    guarded_host: FakeKfp, token: str
) -> None:
    deployer = read_section(DeployerSettings, {"MLRELAY_KFP_TOKEN_TEAM": token})
    backend = make_backend(guarded_host, token="team", tokens=deployer.kfp_tokens)

    outcome = start(backend)

    assert outcome.status == "submitted"
    assert len(guarded_host.runs) == 1
    assert {bearer(e.request) for e in guarded_host.server.recorded()} == {token}


def test_host_refusing_a_missing_token_is_our_configuration_not_the_messages(
    guarded_host: FakeKfp,
) -> None:
    began = time.monotonic()
    with pytest.raises(ConfigurationError) as refused:
        start(make_backend(guarded_host))

    assert refused.value.field == "kfp.host"
    assert "401" in refused.value.problem and "kfp.token" in refused.value.fix
    assert time.monotonic() - began < 5  # one health check, not kfp's 5 attempts 5 s apart
    assert guarded_host.runs == {}


def test_host_refusing_a_wrong_token_names_its_variable_and_never_shows_a_token(
    guarded_host: FakeKfp, token: str, capsys: pytest.CaptureFixture[str], caplog: Any
) -> None:
    wrong = secrets.token_urlsafe(24)
    backend = make_backend(guarded_host, token="team", tokens={"team": Secret(wrong)})

    with pytest.raises(ConfigurationError) as refused:
        start(backend)

    assert refused.value.field == "kfp.token"
    assert "MLRELAY_KFP_TOKEN_TEAM" in refused.value.fix
    [sent] = {bearer(e.request) for e in guarded_host.server.recorded()}
    assert sent == wrong  # the named token was sent, and refused
    shown = str(refused.value) + repr(backend.__dict__) + "".join(capsys.readouterr())
    shown += caplog.text
    assert wrong not in shown and token not in shown


def test_a_token_the_registry_names_but_the_deployer_lacks_stops_before_any_call(
    guarded_host: FakeKfp,
) -> None:
    with pytest.raises(ConfigurationError) as missing:
        make_backend(guarded_host, token="team", tokens={"other": Secret("x")})

    assert missing.value.field == "MLRELAY_KFP_TOKEN_TEAM"
    assert "kfp_token_secret_ids" in missing.value.fix
    assert guarded_host.server.recorded() == []


def test_refused_credentials_redeliver_the_deploy_request_and_keep_no_rejection(
    guarded_host: FakeKfp, tmp_path: Path
) -> None:
    """Through the deployer's entry point: the function raises (Pub/Sub redelivers), nothing is
    rejected, and the ledger's claim is released so a fixed token starts the run."""
    registry = load_registry(REGISTRY)
    options = KfpOptions(host=guarded_host.host, token="team")
    spec = registry.pipelines["penguins"].model_copy(update={"backend": "kfp", "kfp": options})
    registry = registry.model_copy(update={"pipelines": {"penguins": spec}})
    store = LocalFolderStore(tmp_path / "bucket")
    publisher = RecordingPublisher()

    def deliver(token: str) -> None:
        settings = Settings(home=tmp_path, env={"MLRELAY_KFP_TOKEN_TEAM": token})
        use_ports(Ports(settings, publisher=publisher, store=store, registry=registry))
        message = PubsubMessage(deploy_request().to_json(), {}, message_id="m-1")
        try:
            on_deploy_request(to_cloudevent(message, "projects/test-proj/topics/mlrelay-deploys"))
        finally:
            use_ports(None)

    with pytest.raises(RedeliverAfterFix, match=r"kfp\.token") as redeliver:  # a 503
        deliver(secrets.token_urlsafe(24))
    assert isinstance(redeliver.value.error, ConfigurationError)
    assert not list((tmp_path / "bucket").rglob("rejected*"))
    assert publisher.messages == []

    deliver(guarded_host.token or "")
    statuses = [LifecycleEvent.model_validate_json(m[1]).status for m in publisher.messages]
    assert statuses == ["submitted"]
    assert len(guarded_host.runs) == 1


def deploy_request() -> DeployRequest:
    now = datetime(2026, 11, 23, 5, tzinfo=UTC)
    return DeployRequest(
        run_id=RUN_ID, pipeline="penguins", parameters={}, logical_time=now, trigger="schedule",
        accepted_at=now,
        snapshot=SnapshotRef(
            manifest_uri=PARAMETERS["snapshot_manifest_uri"], fingerprint="f" * 64, row_count=344,
            total_bytes=20000, file_count=1,
        ),
    )  # fmt: skip


def test_iap_client_id_makes_kfp_fetch_a_google_token_and_its_refusal_is_configuration(
    guarded_host: FakeKfp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kfp's IAP path with a service-account key whose token endpoint is a loopback that refuses
    the grant: the client id reached kfp (it asked Google for a token before calling the host),
    and the refusal names `kfp.client_id`. A granted token's exchange for the IAP ID token goes
    to a fixed Google address, so the success path is not exercised here."""
    with FakeTokenEndpoint() as google_token:
        email = "mlrelay-deployer@test-proj.iam.gserviceaccount.com"
        monkeypatch.setenv(
            "GOOGLE_APPLICATION_CREDENTIALS", str(google_token.key_file(tmp_path, email))
        )
        backend = make_backend(guarded_host, client_id=IAP_CLIENT_ID)

        with pytest.raises(ConfigurationError) as refused:
            start(backend)

        [grant] = google_token.grants
    assert grant["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    assert refused.value.field == "kfp.client_id"
    assert "invalid_grant" in refused.value.problem
    assert guarded_host.server.recorded() == []  # no call to the host without a token


@pytest.mark.filterwarnings("ignore:This client only works:FutureWarning")
def test_an_expired_iap_token_makes_the_backend_connect_again_for_a_new_one(
    guarded_host: FakeKfp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A deployer instance keeps its client for hours, and an IAP ID token lasts one: the 401
    that follows makes the backend connect again, so kfp asks Google for a new token (refused
    here, which is what shows the attempt) instead of failing every deploy until a restart."""
    with FakeTokenEndpoint() as google_token:
        email = "mlrelay-deployer@test-proj.iam.gserviceaccount.com"
        monkeypatch.setenv(
            "GOOGLE_APPLICATION_CREDENTIALS", str(google_token.key_file(tmp_path, email))
        )
        backend = make_backend(guarded_host, client_id=IAP_CLIENT_ID)
        expired, current = secrets.token_urlsafe(24), guarded_host.token
        guarded_host.token = expired  # an hour ago, when the instance connected
        backend._client = kfp_client_class()(host=guarded_host.host, existing_token=expired)
        guarded_host.token = current
        guarded_host.server.clear()

        with pytest.raises(ConfigurationError, match=r"kfp\.client_id.*invalid_grant"):
            start(backend)

        assert len(google_token.grants) == 1
    assert [bearer(e.request) for e in guarded_host.server.recorded()] == [expired]
