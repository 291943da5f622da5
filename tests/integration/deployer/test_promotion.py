"""Canary promotion through the deployer's two entry points (`on_run_succeeded`,
`on_promotion_command`) with real CloudEvents, the ledger on the GCS emulator (its
create-only claims enforced by the server) and the in-memory endpoint of tests/promotion_kit.py:
two successful runs make a champion and a canary, each success delivered three times; promote
then a rollback of the next canary restore the recorded split exactly; a rollback after a
promote is rejected (kept once, its `promotion.rejected` naming who decided)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from mlrelay.config.settings import Settings
from mlrelay.contracts import LifecycleEvent, RunCommand
from mlrelay.history import RunSummary, write_summary
from mlrelay.ports.container import Ports, use_ports
from mlrelay.promotion_record import read_promotion
from mlrelay.registry import load_registry
from mlrelay.stage import keys
from mlrelay.stage.commands import find_run
from mlrelay.stage.envelope import PubsubMessage, to_cloudevent
from mlrelay_deployer.entry import on_promotion_command, on_run_succeeded
from tests.helpers import REGISTRY, RecordingPublisher
from tests.integration.google_backend import new_bucket
from tests.promotion_kit import MemoryEndpoint, seed_succeeded_run

pytestmark = pytest.mark.usefixtures("gcs")

LIFECYCLE = "projects/test-proj/topics/mlrelay-lifecycle"
COMMANDS = "projects/test-proj/topics/mlrelay-commands"
RUNS = [f"penguins-demo-{n}-0123456789ab" for n in (1, 2, 3)]


@pytest.fixture
def wired(settings: Settings) -> Iterator[tuple[Ports, MemoryEndpoint, RecordingPublisher]]:
    endpoint, publisher = MemoryEndpoint(), RecordingPublisher()
    ports = Ports(
        settings,
        store=new_bucket("promo"),
        registry=load_registry(REGISTRY),  # the demo's `promotion:` (canary 10 %)
        publisher=publisher,
        model_endpoints={"penguins": endpoint},
    )
    use_ports(ports)
    yield ports, endpoint, publisher
    use_ports(None)


def succeed(ports: Ports, run_id: str) -> None:
    seed_succeeded_run(ports.store, run_id)
    write_summary(ports.store, RunSummary(run_id=run_id, pipeline="penguins", status="succeeded"))
    event = LifecycleEvent(run_id=run_id, pipeline="penguins", stage="pipeline", status="succeeded")
    message = PubsubMessage(event.to_json(), event.attributes(), message_id=f"e-{run_id}")
    for _ in range(3):
        on_run_succeeded(to_cloudevent(message, LIFECYCLE))


def ask(ports: Ports, action: str, run_id: str, by: str) -> None:
    state = find_run(ports, run_id).state
    command = RunCommand(
        action=action,  # type: ignore[arg-type]
        run_id=run_id,
        pipeline="penguins",
        requested_by=by,
        requested_at=datetime(2026, 12, 1, 9, tzinfo=UTC),
        source="cli",
        action_key=f"{run_id}/{action}/{state}",
    )
    message = PubsubMessage(command.to_json(), command.attributes(), message_id=f"c-{action}")
    for _ in range(3):
        on_promotion_command(to_cloudevent(message, COMMANDS))


def test_champion_canary_promote_and_rollback_through_the_entry_points(
    wired: tuple[Ports, MemoryEndpoint, RecordingPublisher],
) -> None:
    ports, endpoint, publisher = wired
    one, two, three = RUNS
    succeed(ports, one)
    succeed(ports, two)
    assert endpoint.shares_by_run() == {one: 90, two: 10}
    ask(ports, "promote", two, "cli:alice")
    assert endpoint.shares_by_run() == {two: 100} and list(endpoint.deployed) == ["1002"]
    succeed(ports, three)
    assert endpoint.shares_by_run() == {two: 90, three: 10}
    ask(ports, "rollback", three, "cli:bob")
    assert endpoint.traffic == {"1002": 100} and list(endpoint.deployed) == ["1002"]

    assert len(endpoint.versions) == 3 and len(endpoint.deployments()) == 3
    assert [f"{e.event_type} {e.run_id}" for e in publisher.events()] == [
        f"promotion.promoted {one}",
        f"promotion.canary {two}",
        f"promotion.promoted {two}",
        f"promotion.canary {three}",
        f"promotion.rolled_back {three}",
    ]
    record = read_promotion(ports.store, three)
    assert record is not None and record.state == "rolled_back"
    assert record.previous_traffic == {"1002": 100} == record.traffic
    assert ports.store.list(keys.CANARIES) == []

    ask(ports, "rollback", two, "cli:carol")  # promoted by alice: refused, kept once
    rejected = [e for e in publisher.events() if e.status == "rejected"]
    assert len({e.run_id for e in rejected}) == 1  # one rejection id: the notifier posts once
    assert rejected[0].stage == "promotion"
    said = rejected[0].error or ""
    assert f"{two} was promoted at" in said and "cli:alice" in said
    assert len(ports.store.list(keys.REJECTED)) == 1
    assert endpoint.shares_by_run() == {two: 100}
