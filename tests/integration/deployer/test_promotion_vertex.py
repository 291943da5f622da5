"""The promotion flow over Vertex AI: the deployer's two entry points with
`VertexModelEndpoint` (i18d's, the official clients over REST) against the loopback Model
Registry and endpoint behind a FaultProxy that loses answers. Each success and each command is
delivered three times, a DeployModel and an UndeployModel answer are lost: one model version and
one deployment per run, the champion and canary at 90 / 10, promote at 100 %, and a rollback
restores the split before the canary exactly.

Needs i18d's `vertex_endpoint.py` and `tests/fakes/vertex_models.py` (merged together): imported
inside the test, so the module still collects before that merge."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlrelay.adapters.local_folder import LocalFolderStore
from mlrelay.config.settings import Settings
from mlrelay.contracts import LifecycleEvent, RunCommand
from mlrelay.errors import TransientError
from mlrelay.history import RunSummary, write_summary
from mlrelay.ports.container import Ports, use_ports
from mlrelay.promotion_record import read_promotion
from mlrelay.registry import load_registry
from mlrelay.registry.backends import VertexOptions
from mlrelay.registry.specs import PromotionSpec
from mlrelay.stage.commands import find_run
from mlrelay.stage.envelope import PubsubMessage, to_cloudevent
from mlrelay_deployer.entry import on_promotion_command, on_run_succeeded
from tests.fakes.fault_proxy import LOSE, FaultProxy
from tests.fakes.vertex import FakeVertex
from tests.helpers import REGISTRY, RecordingPublisher
from tests.promotion_kit import seed_succeeded_run

OPTIONS = VertexOptions(project="test-proj", region="europe-west4")
ENDPOINT = "projects/test-proj/locations/europe-west4/endpoints/4321"
PROMOTION = PromotionSpec(
    model="penguins",
    endpoint="4321",
    canary_percent=10,
    serving_image="europe-docker.pkg.dev/vertex-ai/prediction/sklearn-cpu.1-5:latest",
)
RUNS = [f"penguins-demo-{n}-0123456789ab" for n in (1, 2, 3)]


def delivered_three_times(deliver: Any, message: PubsubMessage, topic: str) -> None:
    for _ in range(3):
        try:
            deliver(to_cloudevent(message, topic))
        except TransientError:  # a lost answer the endpoint gave up on: Pub/Sub redelivers
            continue


def test_champion_canary_promote_and_rollback_on_the_loopback_vertex_ai(
    settings: Settings, vertex: FakeVertex, tmp_path: Path
) -> None:
    from mlrelay_deployer.vertex_endpoint import VertexModelEndpoint

    vertex.reset()
    vertex.models.reset()
    vertex.models.add_endpoint(ENDPOINT)
    proxy = FaultProxy(vertex.endpoint.removeprefix("http://"), "vertex").start()
    endpoint = VertexModelEndpoint(
        OPTIONS, PROMOTION, pipeline="penguins", endpoint=proxy.url,
        request_timeout_seconds=5.0, retry_deadline_seconds=6.0,
    )  # fmt: skip
    registry = load_registry(REGISTRY)
    spec = registry.pipelines["penguins"].model_copy(
        update={"promotion": PROMOTION, "vertex": OPTIONS}
    )
    publisher = RecordingPublisher()
    ports = Ports(
        settings,
        store=LocalFolderStore(tmp_path / "bucket"),
        registry=registry.model_copy(update={"pipelines": {"penguins": spec}}),
        publisher=publisher,
        model_endpoints={"penguins": endpoint},
    )

    def succeed(run_id: str) -> None:
        seed_succeeded_run(ports.store, run_id, outputs={"model": f"gs://b/jobs/{run_id}/model/"})
        summary = RunSummary(run_id=run_id, pipeline="penguins", status="succeeded")
        write_summary(ports.store, summary)
        event = LifecycleEvent(
            run_id=run_id, pipeline="penguins", stage="pipeline", status="succeeded"
        )
        message = PubsubMessage(event.to_json(), event.attributes(), message_id=f"e-{run_id}")
        delivered_three_times(on_run_succeeded, message, "projects/p/topics/mlrelay-lifecycle")

    def ask(action: str, run_id: str) -> None:
        state = find_run(ports, run_id).state
        command = RunCommand(
            action=action,  # type: ignore[arg-type]
            run_id=run_id,
            pipeline="penguins",
            requested_by="cli:alice",
            requested_at=datetime(2026, 12, 1, 9, tzinfo=UTC),
            source="cli",
            action_key=f"{run_id}/{action}/{state}",
        )
        message = PubsubMessage(command.to_json(), command.attributes(), message_id="c-1")
        delivered_three_times(on_promotion_command, message, "projects/p/topics/mlrelay-commands")

    use_ports(ports)
    try:
        one, two, three = RUNS
        succeed(one)
        proxy.fail_next(LOSE, path=":deployModel", method="POST")
        succeed(two)
        state = endpoint.state()
        by_run = {d.id: d.run_id for d in state.deployed}
        assert {by_run[k]: v for k, v in state.traffic.items()} == {one: 90, two: 10}
        ask("promote", two)
        state = endpoint.state()
        assert [d.run_id for d in state.deployed] == [two]
        assert list(state.traffic.values()) == [100]
        succeed(three)
        proxy.fail_next(LOSE, path=":undeployModel", method="POST")
        ask("rollback", three)
    finally:
        use_ports(None)
        proxy.stop()

    state = endpoint.state()
    record = read_promotion(ports.store, three)
    assert record is not None and record.state == "rolled_back"
    assert state.traffic == record.previous_traffic == record.traffic
    assert [d.run_id for d in state.deployed] == [two]
    assert proxy.requests[str(LOSE)] == 2
    deploys = [r for r in vertex.requests if r.method == "POST" and r.path.endswith(":deployModel")]
    uploads = [r for r in vertex.requests if r.method == "POST" and r.path.endswith(":upload")]
    assert len(deploys) == 3 and len(uploads) == 3
    assert [e.event_type for e in publisher.events()] == [
        "promotion.promoted",
        "promotion.canary",
        "promotion.promoted",
        "promotion.canary",
        "promotion.rolled_back",
    ]
