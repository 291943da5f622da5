"""The trigger's acceptance (mlrelay_trigger.accept.accept_run_request), called directly with the
real ports of the embedded runtime: the local bus records what is published (nothing is
delivered, so no stage after the trigger runs) and the local folder holds the ledger."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from mlrelay.config.settings import Settings
from mlrelay.contracts import RunRequest, SnapshotRequest
from mlrelay.errors import PermanentError
from mlrelay.ports.container import use_ports
from mlrelay.registry import parse_registry, resolve_parameters
from mlrelay.schedules.members import schedule_named
from mlrelay.stage.envelope import PubsubMessage
from mlrelay.stage.ledger import list_runs, read_run
from mlrelay.stage.run_identity import derive_run_id
from mlrelay_tools.local.runtime import LocalRuntime
from mlrelay_tools.schedules.jobs import tick_request
from mlrelay_trigger.accept import accept_run_request
from tests.helpers import PENGUINS_TEMPLATE, Capture, RecordingChat, make_runtime

SCHEDULED = f"""\
version: 1
pipelines:
  churn:
    source: {{table: events}}
    template: {PENGUINS_TEMPLATE}
    parameters: {{service: all, depth: 3}}
    overridable: [service, depth]
    schedules:
      - name: per-service
        cron: "0 6 * * *"
        time_zone: Europe/Amsterdam
        fan_out:
          billing: {{service: billing}}
          search: {{service: search, depth: 5}}
  fraud:
    source: {{table: payments}}
    template: {PENGUINS_TEMPLATE}
    parameters: {{window: 7}}
groups:
  nightly-all:
    members:
      - {{pipeline: churn}}
      - {{pipeline: churn, parameters: {{service: search}}}}
      - {{pipeline: fraud}}
    schedules:
      - {{name: nightly, cron: "0 1 * * *", time_zone: UTC}}
"""


def delivered(request: RunRequest, message_id: str = "m-1", **changes: object) -> PubsubMessage:
    """`request` as Pub/Sub delivers it to the trigger."""
    return PubsubMessage(request.to_json(), request.attributes(), message_id=message_id, **changes)  # type: ignore[arg-type]


def snapshot_requests(runtime: LocalRuntime, capture: Capture) -> list[SnapshotRequest]:
    topic = runtime.settings.topics.snapshots
    return [SnapshotRequest.model_validate_json(m.data) for t, m in capture.messages if t == topic]


@pytest.fixture
def scheduled(settings: Settings, channel: RecordingChat) -> Iterator[tuple[LocalRuntime, Capture]]:
    """The embedded runtime on a registry with a fanned-out schedule and a group."""
    runtime = make_runtime(settings, channel, registry=parse_registry(SCHEDULED, "registry.yaml"))
    capture = Capture(settings.topics.lifecycle)
    runtime.bus.listen(capture)
    yield runtime, capture
    use_ports(None)


def test_a_valid_request_gets_a_deterministic_run_id_and_its_snapshot_request(
    runtime: LocalRuntime, capture: Capture
) -> None:
    request = RunRequest(pipeline="penguins", dedup_key="nightly-7", parameters={"seed": 7})

    [accepted] = accept_run_request(request, delivered(request), runtime.ports)

    parameters = resolve_parameters(runtime.ports.registry.pipeline("penguins"), {"seed": 7})
    assert parameters["seed"] == 7 and parameters["n_estimators"] == 100  # defaults filled in
    assert accepted.run_id == derive_run_id("penguins", parameters, dedup_key="nightly-7")
    assert accepted.run_id.startswith("penguins-nightly-7-")
    assert (accepted.reused, accepted.member) == (False, "penguins")
    [snapshot] = snapshot_requests(runtime, capture)
    assert snapshot == accepted.snapshot_request
    assert (snapshot.run_id, snapshot.pipeline, snapshot.parameters) == (
        accepted.run_id,
        "penguins",
        parameters,
    )
    [message] = [m for t, m in capture.messages if t == runtime.settings.topics.snapshots]
    assert message.attributes["run_id"] == accepted.run_id
    assert capture.types() == ["trigger.accepted"]
    assert list_runs(runtime.store) == [accepted.run_id]
    assert read_run(runtime.store, accepted.run_id)["trigger"].state == "done"


@pytest.mark.parametrize(
    ("request_", "again", "answers"),
    [
        # the same Pub/Sub message delivered twice: no key, so the message id is the key; the
        # first delivery's messages are out (its marker says so): the redelivery re-emits nothing
        (RunRequest(pipeline="penguins"), "m-1", 1),
        # the same request published twice with its dedup key: two messages, one run, and the
        # second request is answered in full (mlrelay.stage.echoes)
        (RunRequest(pipeline="penguins", dedup_key="backfill-1"), "m-2", 2),
    ],
    ids=["same-message", "same-dedup-key"],
)
def test_a_duplicate_delivery_gives_the_same_run_id_and_no_second_accepted_run(
    runtime: LocalRuntime, capture: Capture, request_: RunRequest, again: str, answers: int
) -> None:
    [first] = accept_run_request(request_, delivered(request_, "m-1"), runtime.ports)
    [second] = accept_run_request(request_, delivered(request_, again), runtime.ports)

    assert second.run_id == first.run_id
    assert (first.reused, second.reused) == (False, True)
    assert list_runs(runtime.store) == [first.run_id]
    assert read_run(runtime.store, first.run_id)["trigger"].attempts == 1
    reused = [e.details["reused"] for e in capture.events if e.event_type == "trigger.accepted"]
    assert reused == [False, True][:answers]  # accepted once, announced again to a new request
    # an answer re-emits the recorded request (same acceptance time): the snapshotter
    # receives the same request twice and, being idempotent too, snapshots once
    assert snapshot_requests(runtime, capture) == [first.snapshot_request] * answers


@pytest.mark.parametrize(
    ("request_", "field", "words"),
    [
        (RunRequest(pipeline="fraud"), "pipeline", "'fraud' is not in the registry"),
        (
            RunRequest(pipeline="penguins", parameters={"test_fraction": 0.9}),
            "parameters.test_fraction",
            "may not be overridden",
        ),
        (
            RunRequest(pipeline="penguins", parameters={"n_estimators": "many"}),
            "parameters.n_estimators",
            "expected int",
        ),
    ],
    ids=["unknown-pipeline", "forbidden-override", "badly-typed-override"],
)
def test_a_request_the_registry_refuses_is_a_permanent_error_naming_the_field(
    runtime: LocalRuntime, capture: Capture, request_: RunRequest, field: str, words: str
) -> None:
    with pytest.raises(PermanentError) as refused:
        accept_run_request(request_, delivered(request_), runtime.ports)

    assert refused.value.field == field
    assert words in str(refused.value) and str(refused.value).startswith(f"{field}: ")
    assert capture.messages == []  # nothing accepted, nothing asked of the snapshotter
    assert list_runs(runtime.store) == []


def test_a_fanned_out_tick_makes_one_run_per_member_for_the_ticks_slot(
    scheduled: tuple[LocalRuntime, Capture],
) -> None:
    runtime, capture = scheduled
    registry = runtime.ports.registry
    tick = tick_request("churn", schedule_named(registry, "churn", "per-service"))
    slot = datetime(2026, 11, 25, 5, 0, tzinfo=UTC)  # 06:00 in Amsterdam
    message = delivered(tick, publish_time=slot + timedelta(seconds=3))

    accepted = accept_run_request(tick, message, runtime.ports)

    assert [a.member for a in accepted] == ["billing", "search"]
    assert [a.snapshot_request.parameters for a in accepted] == [
        {"service": "billing", "depth": 3},
        {"service": "search", "depth": 5},
    ]
    assert len({a.run_id for a in accepted}) == 2
    assert all(a.run_id.startswith("churn-20261125t050000z-") for a in accepted)
    assert {a.snapshot_request.logical_time for a in accepted} == {slot}
    assert sorted(list_runs(runtime.store)) == sorted(a.run_id for a in accepted)
    # the members are accepted side by side: their publishes may come in either order
    published = sorted(snapshot_requests(runtime, capture), key=lambda r: r.run_id)
    assert published == sorted((a.snapshot_request for a in accepted), key=lambda r: r.run_id)
    assert capture.types() == ["trigger.accepted"] * 2


def test_a_group_tick_makes_one_run_per_member_and_a_redelivery_none_more(
    scheduled: tuple[LocalRuntime, Capture],
) -> None:
    runtime, capture = scheduled
    tick = tick_request(
        "nightly-all", schedule_named(runtime.ports.registry, "nightly-all", "nightly")
    )
    message = delivered(tick, publish_time=datetime(2026, 11, 25, 1, 0, 2, tzinfo=UTC))

    accepted = accept_run_request(tick, message, runtime.ports)
    again = accept_run_request(tick, message, runtime.ports)

    assert [(a.snapshot_request.pipeline, a.member) for a in accepted] == [
        ("churn", "churn-1"),
        ("churn", "churn-2"),
        ("fraud", "fraud"),
    ]
    assert [a.snapshot_request.parameters["service"] for a in accepted[:2]] == ["all", "search"]
    assert len({a.run_id for a in accepted}) == 3
    assert [a.run_id for a in again] == [a.run_id for a in accepted]
    assert all(a.reused for a in again)
    assert len(list_runs(runtime.store)) == 3
    details = [e.details for e in capture.events]
    # the redelivery finds each member's messages out (their markers): it publishes nothing
    assert [d["requested_as"] for d in details] == ["nightly-all"] * 3
    assert [d["schedule"] for d in details] == ["nightly"] * 3


def test_a_group_request_one_member_refuses_starts_no_run(
    scheduled: tuple[LocalRuntime, Capture],
) -> None:
    """Every member is checked before any run starts: churn takes `service`, fraud has no such
    parameter, so not even churn's runs are accepted."""
    runtime, capture = scheduled
    request = RunRequest(pipeline="nightly-all", parameters={"service": "billing"})

    with pytest.raises(PermanentError) as refused:
        accept_run_request(request, delivered(request), runtime.ports)

    assert refused.value.field == "parameters.service"
    assert "not a parameter of this pipeline" in str(refused.value)
    assert capture.messages == [] and list_runs(runtime.store) == []


def test_the_members_of_a_tick_are_accepted_side_by_side(
    scheduled: tuple[LocalRuntime, Capture],
) -> None:
    """Three members' ledger claims meet at a barrier: accepted one by one, it would break."""
    runtime, _ = scheduled
    store = runtime.ports.store
    barrier = threading.Barrier(3, timeout=5)
    create = store.create

    def create_together(key: str, data: bytes) -> bool:
        if key.endswith("/trigger.json"):
            barrier.wait()
        return create(key, data)

    store.create = create_together  # type: ignore[method-assign]
    tick = tick_request(
        "nightly-all", schedule_named(runtime.ports.registry, "nightly-all", "nightly")
    )
    message = delivered(tick, publish_time=datetime(2026, 11, 25, 1, 0, 2, tzinfo=UTC))

    accepted = accept_run_request(tick, message, runtime.ports)

    assert [a.member for a in accepted] == ["churn-1", "churn-2", "fraud"]  # in member order
    assert len(list_runs(runtime.store)) == 3
