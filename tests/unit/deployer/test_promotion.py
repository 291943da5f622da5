"""Canary promotion (mlrelay_deployer.promotion) over an in-memory endpoint that keeps Vertex
AI's rules (tests/promotion_kit.py): the first model goes to 100 %, the next serves the canary
share beside it with the champion scaled down, redeliveries and lost answers make one version
and one deployment, promote and roll back move the endpoint once and the first decision wins,
a newer canary supersedes an older one, and the watchdog asks for auto-promotion."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mlrelay.adapters.local_folder import LocalFolderStore
from mlrelay.config.settings import Settings
from mlrelay.contracts import LifecycleEvent, RunCommand
from mlrelay.errors import PermanentError, TransientError
from mlrelay.history import RunSummary, write_summary
from mlrelay.ports.container import Ports
from mlrelay.promotion_record import PromotionRecord, read_promotion
from mlrelay.registry import load_registry
from mlrelay.registry.specs import PromotionSpec
from mlrelay.stage import keys
from mlrelay.stage.commands import find_run
from mlrelay.stage.envelope import PubsubMessage
from mlrelay.stage.records import StageRecord
from mlrelay_deployer.promotion.auto_promote import auto_promote_due
from mlrelay_deployer.promotion.commands import promote_or_roll_back
from mlrelay_deployer.promotion.flow import promote_after_success
from mlrelay_deployer.promotion.split import canary_split
from mlrelay_deployer.watchdog.sweep import run_pass
from mlrelay_deployer.watchdog.wiring import watchdog_deps
from tests.helpers import REGISTRY, RecordingPublisher
from tests.promotion_kit import MemoryEndpoint, seed_succeeded_run

AT = datetime(2026, 11, 23, 5, tzinfo=UTC)
RUNS = [f"penguins-demo-{n}-0123456789ab" for n in range(1, 5)]
ONE, TWO, THREE, _ = RUNS


@dataclass
class Promoting:
    ports: Ports
    endpoint: MemoryEndpoint
    publisher: RecordingPublisher

    def succeed(self, run_id: str, *, verdict: str = "succeeded", times: int = 1) -> None:
        seed_succeeded_run(self.ports.store, run_id)
        summary = RunSummary(run_id=run_id, pipeline="penguins", status=verdict)  # type: ignore[arg-type]
        write_summary(self.ports.store, summary)
        self.deliver_success(run_id, times=times)

    def deliver_success(self, run_id: str, times: int = 1) -> None:
        event = LifecycleEvent(
            run_id=run_id, pipeline="penguins", stage="pipeline", status="succeeded"
        )
        message = PubsubMessage(event.to_json(), event.attributes(), "m-1")
        for _ in range(times):
            promote_after_success(event, message, self.ports)

    def command(
        self, action: str, run_id: str, by: str = "slack:U0ONE", times: int = 1
    ) -> RunCommand:
        state = find_run(self.ports, run_id).state
        asked = RunCommand(
            action=action,  # type: ignore[arg-type]
            run_id=run_id,
            pipeline="penguins",
            requested_by=by,
            requested_at=AT,
            source="slack",
            action_key=f"{run_id}/{action}/{state}",
        )
        message = PubsubMessage(asked.to_json(), asked.attributes(), "c-1")
        for _ in range(times):
            promote_or_roll_back(asked, message, self.ports)
        return asked

    def record(self, run_id: str) -> PromotionRecord:
        found = read_promotion(self.ports.store, run_id)
        assert found is not None
        return found

    def types(self) -> list[str]:
        return [f"{e.event_type} {e.run_id}" for e in self.publisher.events()]


def promoting(settings: Settings, tmp_path: Path, **promotion: object) -> Promoting:
    registry = load_registry(REGISTRY)
    spec = registry.pipelines["penguins"].model_copy(
        update={
            "promotion": PromotionSpec.model_validate(
                {"model": "penguins", "endpoint": "penguins", "canary_percent": 10, **promotion}
            )
        }
    )
    registry = registry.model_copy(update={"pipelines": {"penguins": spec}})
    endpoint, publisher = MemoryEndpoint(), RecordingPublisher()
    ports = Ports(
        settings,
        store=LocalFolderStore(tmp_path / "bucket"),
        registry=registry,
        publisher=publisher,
        model_endpoints={"penguins": endpoint},
    )
    return Promoting(ports, endpoint, publisher)


def test_canary_split_scales_the_champions_down_in_whole_percents() -> None:
    assert canary_split({"a": 100}, 10) == {"a": 90}
    assert canary_split({"a": 50, "b": 50}, 10) == {"a": 45, "b": 45}
    assert canary_split({"a": 95, "b": 5}, 10) == {"a": 86, "b": 4}  # 85.5 / 4.5: tie to a
    assert canary_split({"a": 34, "b": 33, "c": 33}, 25) == {"a": 25, "b": 25, "c": 25}
    assert canary_split({"a": 50, "b": 30, "c": 20}, 33) == {"a": 34, "b": 20, "c": 13}
    assert canary_split({"a": 99, "b": 1}, 50) == {"a": 50, "b": 0}
    for previous in ({"a": 7, "b": 93}, {"a": 1, "b": 1, "c": 98}, {"x": 100}):
        for pct in (1, 10, 33, 99):
            assert sum(canary_split(previous, pct).values()) == 100 - pct


def test_the_first_model_of_an_empty_endpoint_serves_all_of_it(
    settings: Settings, tmp_path: Path
) -> None:
    p = promoting(settings, tmp_path)
    p.succeed(ONE, times=3)

    assert p.endpoint.calls == [f"upload {ONE}", f"deploy {ONE} {{'1001': 100}}"]
    (event,) = p.publisher.events()
    assert event.event_type == "promotion.promoted"
    assert event.details["first"] is True
    assert event.details["traffic"] == {"1001": 100}
    assert event.details["command"] is None and event.details["previous_traffic"] == {}
    assert p.record(ONE).state == "promoted"
    assert p.ports.store.list(keys.CANARIES) == []


def test_the_next_model_is_a_canary_beside_the_champion(settings: Settings, tmp_path: Path) -> None:
    p = promoting(settings, tmp_path, auto_promote_after="2h")
    p.succeed(ONE)
    p.succeed(TWO, times=3)

    assert p.endpoint.shares_by_run() == {ONE: 90, TWO: 10}
    assert len(p.endpoint.deployments()) == 2 and len(p.endpoint.versions) == 2
    canary = p.publisher.events()[-1]
    assert canary.event_type == "promotion.canary" and canary.run_id == TWO
    assert canary.details["previous_traffic"] == {"1001": 100}
    assert canary.details["traffic"] == {"1001": 90, "1002": 10}
    assert canary.details["champion_run_id"] == ONE
    assert canary.details["canary_percent"] == 10
    assert canary.details["deployed_model_id"] == "1002"
    assert canary.details["model"].endswith("models/penguins@2")
    assert canary.details["auto_promote_at"] is not None
    assert p.types() == [f"promotion.promoted {ONE}", f"promotion.canary {TWO}"]
    assert p.ports.store.list(keys.CANARIES) == [keys.canary(TWO)]


def test_a_run_with_a_regression_is_not_promoted(settings: Settings, tmp_path: Path) -> None:
    p = promoting(settings, tmp_path)
    p.succeed(ONE, verdict="succeeded_with_regression")
    assert p.endpoint.calls == [] and p.publisher.events() == []
    assert read_promotion(p.ports.store, ONE) is None


def test_before_the_verdict_is_written_the_event_is_redelivered(
    settings: Settings, tmp_path: Path
) -> None:
    p = promoting(settings, tmp_path)
    seed_succeeded_run(p.ports.store, ONE)
    with pytest.raises(TransientError, match="verdict"):
        p.deliver_success(ONE)
    assert p.endpoint.calls == []


def test_a_run_without_the_model_output_fails_once_naming_the_outputs(
    settings: Settings, tmp_path: Path
) -> None:
    p = promoting(settings, tmp_path, artifact="trained")
    p.succeed(ONE, times=3)
    (failed,) = p.publisher.events()
    assert failed.event_type == "promotion.failed"
    assert "promotion.artifact" in (failed.error or "")
    assert "'trained'" in (failed.error or "") and "model" in (failed.error or "")
    assert failed.details["endpoint"] == "penguins"
    assert p.record(ONE).state == "failed"
    assert p.endpoint.calls == []


@pytest.mark.parametrize("lost", ["upload", "deploy"])
def test_a_lost_answer_makes_one_version_and_one_deployment(
    settings: Settings, tmp_path: Path, lost: str
) -> None:
    p = promoting(settings, tmp_path)
    p.succeed(ONE)
    p.endpoint.lose.add(lost)
    with pytest.raises(TransientError):
        p.succeed(TWO)
    p.deliver_success(TWO, times=2)

    assert len(p.endpoint.versions) == 2
    assert [c for c in p.endpoint.deployments() if TWO in c] == [
        f"deploy {TWO} {{'1001': 90, '1002': 10}}"
    ]
    assert p.endpoint.shares_by_run() == {ONE: 90, TWO: 10}
    assert p.record(TWO).previous_traffic == {"1001": 100}
    assert p.types().count(f"promotion.canary {TWO}") == 1


def test_a_worker_lost_between_deploy_and_record_is_finished_with_the_recorded_split(
    settings: Settings, tmp_path: Path
) -> None:
    """The deploy happened, the worker died before recording it: the redelivery takes the
    expired claim over, finds the version deployed and keeps the split recorded before it."""
    p = promoting(settings, tmp_path)
    p.succeed(ONE)
    p.endpoint.lose.add("deploy")
    with pytest.raises(TransientError):
        p.succeed(TWO)
    # the endpoint now serves 90/10; a naive flow would record that as the split before
    p.deliver_success(TWO)
    assert p.record(TWO).previous_traffic == {"1001": 100}
    p.command("rollback", TWO)
    assert p.endpoint.traffic == {"1001": 100} and set(p.endpoint.deployed) == {"1001"}


def test_a_worker_that_died_after_deploying_is_taken_over_without_a_second_deployment(
    settings: Settings, tmp_path: Path
) -> None:
    """The ledger as a worker leaves it when it dies between the deploy and its record: the
    claim still `running` (its lease run out), the record `deploying`, no event. The
    redelivery takes the claim over, finds the version served and records the canary."""
    p = promoting(settings, tmp_path)
    p.succeed(ONE)
    p.succeed(TWO)
    store = p.ports.store
    deploying = p.record(TWO).model_copy(
        update={"state": "deploying", "deployed_model_id": "", "traffic": {}}
    )
    store.write(keys.promotion(TWO), deploying.model_dump_json().encode())
    store.delete(keys.promotion_published(TWO, "canary"))
    store.delete(keys.canary(TWO))
    expired = (AT - timedelta(hours=1)).isoformat()
    claim = StageRecord("promotion", "running", expired, expired, claim_id="dead-worker")
    store.write(keys.promotion_deploy(TWO), claim.to_json())
    before = list(p.endpoint.calls)
    p.publisher.messages.clear()  # the dead worker published nothing

    p.deliver_success(TWO, times=2)

    assert p.endpoint.calls == before  # no upload, no deploy, the split already right
    record = p.record(TWO)
    assert (record.state, record.deployed_model_id) == ("canary", "1002")
    assert record.previous_traffic == {"1001": 100}
    assert p.types() == [f"promotion.canary {TWO}"]
    assert store.list(keys.CANARIES) == [keys.canary(TWO)]


def test_promote_gives_the_canary_everything_and_undeploys_the_champion_once(
    settings: Settings, tmp_path: Path
) -> None:
    p = promoting(settings, tmp_path)
    p.succeed(ONE)
    p.succeed(TWO)
    asked = p.command("promote", TWO, times=3)
    p.command("promote", TWO, by="cli:someone")  # the same decision again: success, no change

    assert p.endpoint.shares_by_run() == {TWO: 100}
    assert set(p.endpoint.deployed) == {"1002"}
    assert p.endpoint.calls[-2:] == ["set_traffic {'1002': 100}", "undeploy 1001 {'1002': 100}"]
    promoted = p.publisher.events()[-1]
    assert promoted.event_type == "promotion.promoted" and promoted.run_id == TWO
    assert promoted.details["first"] is False
    assert promoted.details["command"]["requested_by"] == asked.requested_by
    assert promoted.details["previous_traffic"] == {"1001": 100}
    assert p.types().count(f"promotion.promoted {TWO}") == 1
    assert p.record(TWO).state == "promoted"
    assert p.ports.store.list(keys.CANARIES) == []


def test_rollback_restores_the_recorded_split_exactly(settings: Settings, tmp_path: Path) -> None:
    p = promoting(settings, tmp_path, canary_percent=25)
    p.succeed(ONE)
    p.succeed(TWO)
    p.command("promote", TWO)  # champion TWO alone at 100
    p.endpoint.set_traffic({"1002": 100})
    p.succeed(THREE)
    assert p.endpoint.traffic == {"1002": 75, "1003": 25}
    before = dict(p.record(THREE).previous_traffic)
    p.command("rollback", THREE, times=3)

    assert p.endpoint.traffic == before == {"1002": 100}
    assert "1003" not in p.endpoint.deployed
    rolled = p.publisher.events()[-1]
    assert rolled.event_type == "promotion.rolled_back"
    assert rolled.details["traffic"] == before
    assert rolled.details["command"]["requested_by"] == "slack:U0ONE"
    assert p.types().count(f"promotion.rolled_back {THREE}") == 1


def test_rollback_restores_a_split_of_several_models(settings: Settings, tmp_path: Path) -> None:
    p = promoting(settings, tmp_path)
    p.succeed(ONE)
    p.succeed(TWO)  # 90 / 10, undecided
    p.endpoint.set_traffic({"1001": 63, "1002": 37})  # a person moved it by hand
    p.ports.store.delete(keys.canary(TWO))  # and it left the index: no supersede
    p.succeed(THREE)
    assert p.record(THREE).previous_traffic == {"1001": 63, "1002": 37}
    assert p.endpoint.traffic == {"1001": 57, "1002": 33, "1003": 10}
    p.command("rollback", THREE)
    assert p.endpoint.traffic == {"1001": 63, "1002": 37}


def test_the_first_decision_wins_and_the_other_is_refused_naming_it(
    settings: Settings, tmp_path: Path
) -> None:
    p = promoting(settings, tmp_path)
    p.succeed(ONE)
    p.succeed(TWO)
    p.command("promote", TWO, by="slack:U0FIRST")
    with pytest.raises(PermanentError) as caught:
        p.command("rollback", TWO, by="slack:U0LATE")
    assert caught.value.field == "run_id"
    assert f"{TWO} was promoted at" in str(caught.value) and "slack:U0FIRST" in str(caught.value)
    assert "the models it replaced are undeployed" in str(caught.value)  # the fix
    assert p.endpoint.shares_by_run() == {TWO: 100}
    with pytest.raises(PermanentError, match="first on penguins"):
        p.command("rollback", ONE)


def test_a_command_before_any_canary_is_refused(settings: Settings, tmp_path: Path) -> None:
    p = promoting(settings, tmp_path)
    seed_succeeded_run(p.ports.store, ONE)
    with pytest.raises(PermanentError, match="has no model on an endpoint"):
        p.command("promote", ONE)


def test_a_newer_canary_supersedes_the_undecided_one(settings: Settings, tmp_path: Path) -> None:
    p = promoting(settings, tmp_path)
    p.succeed(ONE)
    p.succeed(TWO)
    p.succeed(THREE, times=2)

    assert p.endpoint.shares_by_run() == {ONE: 90, THREE: 10}
    assert "1002" not in p.endpoint.deployed
    assert p.record(TWO).state == "rolled_back"
    assert p.record(THREE).previous_traffic == {"1001": 100}
    superseded = next(e for e in p.publisher.events() if e.event_type == "promotion.rolled_back")
    assert superseded.run_id == TWO and superseded.details["superseded_by"] == THREE
    assert superseded.details["traffic"] == {"1001": 100}
    assert p.ports.store.list(keys.CANARIES) == [keys.canary(THREE)]
    with pytest.raises(PermanentError, match=f"rolled back at .* by run {THREE}"):
        p.command("promote", TWO)


def test_the_watchdog_asks_once_to_promote_a_canary_past_auto_promote_after(
    settings: Settings, tmp_path: Path
) -> None:
    p = promoting(settings, tmp_path, auto_promote_after="1h")
    p.succeed(ONE)
    p.succeed(TWO)
    due = datetime.fromisoformat(p.record(TWO).auto_promote_at or "")
    assert auto_promote_due(p.ports, due - timedelta(minutes=1)) == []
    assert auto_promote_due(p.ports, due + timedelta(minutes=1)) == [TWO]
    assert auto_promote_due(p.ports, due + timedelta(minutes=6)) == []  # one command per state

    (command,) = [
        RunCommand.model_validate_json(data)
        for _, data, attrs in p.publisher.messages
        if attrs["event_type"] == RunCommand.kind
    ]
    assert (command.action, command.source) == ("promote", "watchdog")
    assert command.requested_by == "auto_promote_after"
    message = PubsubMessage(command.to_json(), command.attributes(), "c-9")
    promote_or_roll_back(command, message, p.ports)
    assert p.endpoint.shares_by_run() == {TWO: 100}
    assert auto_promote_due(p.ports, due + timedelta(hours=5)) == []
    assert p.ports.store.list(keys.CANARIES) == []


def test_a_person_s_rollback_beats_a_later_auto_promotion(
    settings: Settings, tmp_path: Path
) -> None:
    p = promoting(settings, tmp_path, auto_promote_after="1h")
    p.succeed(ONE)
    p.succeed(TWO)
    p.command("rollback", TWO)
    due = datetime.fromisoformat(p.record(TWO).auto_promote_at or "")
    assert auto_promote_due(p.ports, due + timedelta(minutes=1)) == []
    assert p.endpoint.shares_by_run() == {ONE: 100}


def test_a_promote_refused_before_the_canary_is_asked_afresh_once_it_is_there(
    settings: Settings, tmp_path: Path
) -> None:
    """The run state of a command (its claim's key) moves with the promotion record: a click
    refused while the model was not deployed yet does not block the next one."""
    p = promoting(settings, tmp_path)
    p.succeed(ONE)
    seed_succeeded_run(p.ports.store, TWO)
    write_summary(p.ports.store, RunSummary(run_id=TWO, pipeline="penguins", status="succeeded"))
    with pytest.raises(PermanentError, match="has no model on an endpoint"):
        p.command("promote", TWO)
    before = find_run(p.ports, TWO).state
    p.deliver_success(TWO)
    assert find_run(p.ports, TWO).state != before
    p.command("promote", TWO)
    assert p.endpoint.shares_by_run() == {TWO: 100}


def test_a_watchdog_pass_reports_the_auto_promotion_it_asked_for(
    settings: Settings, tmp_path: Path
) -> None:
    p = promoting(settings, tmp_path, auto_promote_after="30m")
    p.succeed(ONE)
    p.succeed(TWO)
    due = datetime.fromisoformat(p.record(TWO).auto_promote_at or "")
    spec = p.ports.registry.pipelines["penguins"].model_copy(update={"schedules": []})
    registry = p.ports.registry.model_copy(update={"pipelines": {"penguins": spec}})
    ports = Ports(
        settings,
        store=p.ports.store,
        registry=registry,
        publisher=p.publisher,
        model_endpoints={"penguins": p.endpoint},
    )
    report = run_pass(watchdog_deps(ports, now=lambda: due + timedelta(seconds=1)))
    found = [f for f in report.findings if f.kind == "auto_promote"]
    assert [(f.run_id, f.stage, f.first) for f in found] == [(TWO, "promotion", True)]


def test_while_another_promotion_moves_the_endpoint_a_second_waits_for_redelivery(
    settings: Settings, tmp_path: Path
) -> None:
    # two runs succeeding at the same moment: the second must not read the split the first is
    # changing (it would record it as the one to restore, and two canaries would serve)
    from mlrelay.contracts import utc_now

    p = promoting(settings, tmp_path)
    p.succeed(ONE)
    calls = list(p.endpoint.calls)
    seed_succeeded_run(p.ports.store, TWO)
    write_summary(p.ports.store, RunSummary(run_id=TWO, pipeline="penguins", status="succeeded"))
    lock = keys.promotion_endpoint_lock("penguins")
    now = utc_now()
    held = StageRecord(
        "endpoint", "running", now.isoformat(), (now + timedelta(minutes=5)).isoformat(),
        claim_id="another-delivery",
    )  # fmt: skip
    p.ports.store.create(lock, held.to_json())  # another delivery, mid-move, its lease alive

    with pytest.raises(TransientError, match="another promotion is moving endpoint penguins"):
        p.deliver_success(TWO)
    assert p.endpoint.calls[len(calls) :] == [f"upload {TWO}"]  # nothing moved
    assert read_promotion(p.ports.store, TWO) is None
    assert p.ports.store.read(lock) == held.to_json()  # the other's hold untouched

    p.ports.store.delete(lock)  # the other delivery is done
    p.deliver_success(TWO)  # the redelivery
    assert p.endpoint.shares_by_run() == {ONE: 90, TWO: 10}
    assert p.ports.store.list(f"{keys.PROMOTIONS}endpoints/") == []  # released


def test_a_dead_holders_endpoint_lock_is_taken_over_after_its_lease(
    settings: Settings, tmp_path: Path
) -> None:
    p = promoting(settings, tmp_path)
    gone = AT - timedelta(hours=1)
    dead = StageRecord(
        "endpoint", "running", gone.isoformat(), (gone + timedelta(seconds=30)).isoformat(),
        claim_id="dead",
    )  # fmt: skip
    p.ports.store.create(keys.promotion_endpoint_lock("penguins"), dead.to_json())

    p.succeed(ONE)

    assert p.record(ONE).state == "promoted"
    assert p.ports.store.list(f"{keys.PROMOTIONS}endpoints/") == []


def test_a_promote_the_endpoint_can_never_carry_out_is_one_promotion_failed(
    settings: Settings, tmp_path: Path
) -> None:
    p = promoting(settings, tmp_path)
    p.succeed(ONE)
    p.succeed(TWO)
    p.endpoint.undeploy(deployed_model_id="1002", traffic={"1001": 100})  # by hand, in a console

    with pytest.raises(PermanentError, match="no longer on penguins"):
        p.command("promote", TWO)
    with pytest.raises(PermanentError, match="no longer on penguins"):
        p.command("promote", TWO, times=2)  # redelivered: refused the same way, nothing moves

    record = p.record(TWO)
    assert record.state == "failed" and "no longer on penguins" in (record.error or "")
    assert p.types()[-1] == f"promotion.failed {TWO}"
    assert p.types().count(f"promotion.failed {TWO}") == 1  # heard once
    assert p.endpoint.shares_by_run() == {ONE: 100}
    assert p.ports.store.list(keys.CANARIES) == []  # nothing will ask for it again


def test_a_canary_that_cannot_be_carried_out_never_stops_the_watchdogs_pass(
    settings: Settings, tmp_path: Path
) -> None:
    from mlrelay_deployer.promotion.decisions import decide

    p = promoting(settings, tmp_path, auto_promote_after="1h")
    p.succeed(ONE)
    p.succeed(TWO)
    decide(p.ports, TWO, "promote", {"requested_by": "slack:U0ONE"})  # its worker then died
    p.endpoint.undeploy(deployed_model_id="1002", traffic={"1001": 100})

    assert auto_promote_due(p.ports, AT) == []  # no exception: the pass goes on to its checks
    assert p.record(TWO).state == "failed"
    assert p.types().count(f"promotion.failed {TWO}") == 1
    assert auto_promote_due(p.ports, AT) == []  # the next pass: unindexed, nothing again
    assert p.types().count(f"promotion.failed {TWO}") == 1
