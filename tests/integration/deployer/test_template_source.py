"""Where templates come from: `gs://` (read from fake-gcs-server) and Artifact Registry (a tag
resolved to its digest against a loopback server); both deployed with the Vertex backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from google.auth.credentials import AnonymousCredentials

from mlrelay.config.settings import Settings
from mlrelay.ports.container import use_ports
from mlrelay.stage.ledger import read_run
from mlrelay_deployer.template_source import ArtifactRegistryAccess, use_artifact_registry
from mlrelay_deployer.vertex_backend import VertexPipelineBackend
from tests.fakes.artifact_registry import FakeArtifactRegistry
from tests.fakes.vertex import FakeVertex
from tests.helpers import PENGUINS_TEMPLATE, RecordingChat, make_runtime
from tests.integration.deployer.vertex_deploys import RUN_ID, deploy, vertex_registry
from tests.integration.peers import gcs_emulator


def test_gs_template_is_read_from_the_bucket_and_sent_inline(
    backend: VertexPipelineBackend,
    vertex: FakeVertex,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from google.cloud import storage  # type: ignore[attr-defined,unused-ignore]

    with gcs_emulator(tmp_path) as endpoint:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", endpoint)
        monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "test-proj")
        client = storage.Client(project="test-proj", credentials=AnonymousCredentials())
        client.create_bucket("mlrelay-templates").blob("penguins/v1.yaml").upload_from_filename(
            str(PENGUINS_TEMPLATE)
        )

        outcome = backend.start(
            run_id=RUN_ID, pipeline="penguins", template="gs://mlrelay-templates/penguins/v1.yaml",
            parameters={"run_id": RUN_ID}, labels={}, announce=lambda links: None,
        )  # fmt: skip

    [create] = vertex.creates()
    assert create.body["pipelineSpec"]["pipelineInfo"]["name"] == "penguins-training"
    assert "templateUri" not in create.body
    assert outcome.details["template"] == "gs://mlrelay-templates/penguins/v1.yaml"


AR_TEMPLATE = "https://europe-west4-kfp.pkg.dev/test-proj/pipelines/penguins-training"


@pytest.fixture
def artifact_registry() -> Iterator[FakeArtifactRegistry]:
    fake = FakeArtifactRegistry().start()
    use_artifact_registry(
        ArtifactRegistryAccess(
            api=f"{fake.url}/v1", package_host=fake.url, session=requests.Session()
        )
    )
    yield fake
    use_artifact_registry(None)
    fake.stop()


def test_artifact_registry_tag_is_pinned_to_its_digest_and_recorded(
    settings: Settings,
    channel: RecordingChat,
    backend: VertexPipelineBackend,
    vertex: FakeVertex,
    artifact_registry: FakeArtifactRegistry,
) -> None:
    text = PENGUINS_TEMPLATE.read_text()
    first_digest = artifact_registry.push(text, "v1")
    registry = vertex_registry()
    spec = registry.pipelines["penguins"].model_copy(update={"template": f"{AR_TEMPLATE}/v1"})
    runtime = make_runtime(
        settings,
        channel,
        registry=registry.model_copy(update={"pipelines": {"penguins": spec}}),
        pipeline_backends={"penguins": backend},
    )
    try:
        deploy(runtime)
        second_digest = artifact_registry.push(text.replace("Train and", "Train, and"), "v1")
        deploy(runtime, run_id="penguins-demo-2-0123456789ab")  # the tag moved meanwhile
        first, second = (
            read_run(runtime.store, r)["pipeline"] for r in (RUN_ID, "penguins-demo-2-0123456789ab")
        )
    finally:
        use_ports(None)

    sent = [c.body["templateUri"] for c in vertex.creates()]
    assert sent == [f"{AR_TEMPLATE}/{first_digest}", f"{AR_TEMPLATE}/{second_digest}"]
    assert (first.result or {})["details"]["template"] == f"{AR_TEMPLATE}/{first_digest}"
    assert (second.result or {})["details"]["template"] == f"{AR_TEMPLATE}/{second_digest}"
    assert vertex.creates()[0].body["pipelineSpec"]["pipelineInfo"]["name"] == "penguins-training"
    tag_lookups = [p for p in artifact_registry.paths if "/tags/" in p]
    downloads = [p for p in artifact_registry.paths if "/sha256:" in p]
    assert (len(tag_lookups), len(downloads)) == (2, 2)  # once per deploy, not per reader
