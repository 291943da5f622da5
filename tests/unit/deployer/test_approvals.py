"""The approval gate (mlrelay_deployer.approval_gate, .approvals): a gated run is held after its
snapshot, one approval starts it once, one rejection (a person's or the timeout's) ends it once,
and a command about a run that is not held is refused naming the state. The real start path
runs (deploy_for_run, the ledger claim, the penguins template); only the backend records."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mlrelay.adapters.local_folder import LocalFolderStore
from mlrelay.config.settings import Settings
from mlrelay.contracts import DeployRequest, RunCommand, SnapshotRef
from mlrelay.errors import PermanentError
from mlrelay.history import RunSummary, write_summary
from mlrelay.ports.container import Ports
from mlrelay.ports.protocols import PipelineOutcome
from mlrelay.registry import load_registry
from mlrelay.stage import keys
from mlrelay.stage.envelope import PubsubMessage
from mlrelay.stage.ledger import StageRecord
from mlrelay_deployer.approval_gate import hold_for_approval
from mlrelay_deployer.approvals import approve_or_reject, expire_held_runs
from mlrelay_deployer.deploy import deploy_for_run
from tests.helpers import REGISTRY, RecordingPublisher

RUN = "penguins-demo-5-0123456789ab"
OTHER = "penguins-demo-6-0123456789ab"
AT = datetime(2026, 11, 23, 5, tzinfo=UTC)
QUALITY = [{"name": "enough rows", "passed": True, "severity": "error", "value": 344}]


@dataclass
class RecordingBackend:
    starts: list[str] = field(default_factory=list)

    def completion_destination(self, run_id: str) -> str:
        return "unused"

    def start(
        self, *, run_id: str, announce: Callable[[dict[str, str]], None], **_: Any
    ) -> PipelineOutcome:
        self.starts.append(run_id)
        announce({"job": f"https://console.example.invalid/{run_id}"})
        return PipelineOutcome(status="submitted", job_name=run_id)

    def cancel(self, *, run_id: str, job_name: str, requested: dict[str, str]) -> str:
        raise AssertionError("not called here")


@dataclass
class Gated:
    ports: Ports
    backend: RecordingBackend
    publisher: RecordingPublisher


def gated_ports(
    settings: Settings, tmp_path: Path, approval: str | None = "before_deploy"
) -> Gated:
    registry = load_registry(REGISTRY)
    spec = registry.pipelines["penguins"].model_copy(
        update={"approval": approval, "approval_timeout": "2h"}
    )
    registry = registry.model_copy(update={"pipelines": {"penguins": spec}})
    backend, publisher = RecordingBackend(), RecordingPublisher()
    ports = Ports(
        settings,
        store=LocalFolderStore(tmp_path / "bucket"),
        registry=registry,
        publisher=publisher,
        pipeline_backends={"penguins": backend},
    )
    return Gated(ports, backend, publisher)


def deploy_request(ports: Ports, run_id: str = RUN) -> DeployRequest:
    """The snapshotter's request, with its manifest (and quality block) in the bucket."""
    manifest = keys.manifest("penguins", run_id)
    ports.store.write(manifest, json.dumps({"run_id": run_id, "quality": QUALITY}).encode())
    trigger = StageRecord("trigger", "done", AT.isoformat(), result={"pipeline": "penguins"})
    ports.store.write(keys.ledger(run_id, "trigger"), trigger.to_json())
    snapshot = StageRecord("snapshot", "done", AT.isoformat(), result={"row_count": 344})
    ports.store.write(keys.ledger(run_id, "snapshot"), snapshot.to_json())
    return DeployRequest(
        run_id=run_id,
        pipeline="penguins",
        parameters={"min_year": 2007, "test_fraction": 0.25, "n_estimators": 200,
                    "max_depth": 6, "seed": 42},
        logical_time=AT,
        trigger="schedule",
        accepted_at=AT,
        snapshot=SnapshotRef(
            manifest_uri=ports.store.uri(manifest), fingerprint="e" * 64, row_count=344,
            total_bytes=20000, file_count=1,
        ),
    )  # fmt: skip


def command(
    action: str, by: str = "slack:U0APPROVER", state: str = "00ff00ff00ff00ff"
) -> RunCommand:
    return RunCommand(
        action=action,  # type: ignore[arg-type]
        run_id=RUN,
        pipeline="penguins",
        requested_by=by,
        requested_at=AT + timedelta(minutes=5),
        source="slack",
        action_key=f"{RUN}/{action}/{state}",
    )


def deliver(ports: Ports, request: DeployRequest | RunCommand, times: int = 1) -> None:
    message = PubsubMessage(request.to_json(), request.attributes(), "m-1")
    for _ in range(times):
        if isinstance(request, DeployRequest):
            deploy_for_run(request, message, ports)
        else:
            approve_or_reject(request, message, ports)


def refusal(ports: Ports, asked: RunCommand) -> str:
    with pytest.raises(PermanentError) as caught:
        deliver(ports, asked)
    assert caught.value.field == "run_id"
    return caught.value.problem.rsplit(" (", 1)[0]  # the fix follows in brackets


def test_a_gated_run_is_held_once_with_the_snapshot_figures(
    settings: Settings, tmp_path: Path
) -> None:
    gated = gated_ports(settings, tmp_path)
    deliver(gated.ports, deploy_request(gated.ports), times=3)

    assert gated.backend.starts == []
    (held,) = gated.publisher.events()
    assert held.event_type == "pipeline.held"
    snapshot = held.details["snapshot"]
    assert (snapshot["rows"], snapshot["bytes"], snapshot["files"]) == (344, 20000, 1)
    assert snapshot["fingerprint"] == "e" * 64
    assert snapshot["quality"] == QUALITY
    assert held.details["timeout_seconds"] == 7200
    assert gated.ports.store.list(keys.HELD) == [keys.held(RUN)]
    assert gated.ports.store.read(keys.ledger(RUN, "pipeline")) is None


def test_without_the_gate_the_run_starts_at_once(settings: Settings, tmp_path: Path) -> None:
    gated = gated_ports(settings, tmp_path, approval=None)
    deliver(gated.ports, deploy_request(gated.ports))
    assert gated.backend.starts == [RUN]
    assert gated.publisher.types() == ["pipeline.submitted"]


def test_approve_delivered_three_times_starts_the_held_run_once(
    settings: Settings, tmp_path: Path
) -> None:
    gated = gated_ports(settings, tmp_path)
    request = deploy_request(gated.ports)
    deliver(gated.ports, request)
    deliver(gated.ports, command("approve"), times=3)
    deliver(gated.ports, request)  # the DeployRequest redelivered after the approval

    assert gated.backend.starts == [RUN]
    assert gated.publisher.types() == ["pipeline.held", "pipeline.submitted"]
    assert gated.ports.store.list(keys.HELD) == []


def test_a_second_decision_after_an_approval_is_refused_naming_who_decided(
    settings: Settings, tmp_path: Path
) -> None:
    gated = gated_ports(settings, tmp_path)
    deliver(gated.ports, deploy_request(gated.ports))
    deliver(gated.ports, command("approve"))
    later = command("reject", by="cli:ops", state="1111111111111111")
    assert refusal(gated.ports, later) == (
        f"{RUN} is not held any more: it was already approved by slack:U0APPROVER"
    )
    assert gated.backend.starts == [RUN]
    assert "pipeline.rejected" not in gated.publisher.types()


def test_reject_ends_the_held_run_with_one_rejected_event_naming_who(
    settings: Settings, tmp_path: Path
) -> None:
    gated = gated_ports(settings, tmp_path)
    request = deploy_request(gated.ports)
    deliver(gated.ports, request)
    deliver(gated.ports, command("reject"), times=3)
    deliver(gated.ports, request)  # a late DeployRequest starts nothing

    assert gated.backend.starts == []
    assert gated.publisher.types() == ["pipeline.held", "pipeline.rejected"]
    rejected = gated.publisher.events()[1]
    assert rejected.details["command"] == {
        "action": "reject",
        "requested_by": "slack:U0APPROVER",
        "requested_at": (AT + timedelta(minutes=5)).isoformat(),
        "source": "slack",
    }
    assert rejected.summary == "rejected by slack:U0APPROVER"
    approve = command("approve", by="cli:ops", state="2222222222222222")
    assert "already rejected by slack:U0APPROVER" in refusal(gated.ports, approve)
    assert gated.backend.starts == []


def test_a_run_that_was_never_held_is_refused_naming_its_state(
    settings: Settings, tmp_path: Path
) -> None:
    gated = gated_ports(settings, tmp_path, approval=None)
    deliver(gated.ports, deploy_request(gated.ports))
    assert refusal(gated.ports, command("approve")) == (
        f"{RUN} is not held for approval (its pipeline was started)"
    )
    write_summary(gated.ports.store, RunSummary(run_id=RUN, pipeline="penguins", status="failed"))
    assert refusal(gated.ports, command("reject")) == f"{RUN} has already ended (failed)"
    assert gated.backend.starts == [RUN]


def test_expire_rejects_only_runs_past_their_timeout_and_only_once(
    settings: Settings, tmp_path: Path
) -> None:
    gated = gated_ports(settings, tmp_path)
    clock = datetime(2026, 11, 23, 6, tzinfo=UTC)
    spec = gated.ports.registry.pipeline("penguins")
    for run_id, held_at in ((RUN, clock), (OTHER, clock + timedelta(hours=1))):
        request = deploy_request(gated.ports, run_id)
        assert hold_for_approval(request, gated.ports, spec, now=held_at)  # the injected clock

    assert expire_held_runs(gated.ports, clock + timedelta(hours=1, minutes=59)) == []
    assert expire_held_runs(gated.ports, clock + timedelta(hours=2, minutes=1)) == [RUN]
    assert expire_held_runs(gated.ports, clock + timedelta(hours=2, minutes=2)) == []
    assert expire_held_runs(gated.ports, clock + timedelta(hours=3, minutes=1)) == [OTHER]
    assert expire_held_runs(gated.ports, clock + timedelta(days=2)) == []

    rejected = [e for e in gated.publisher.events() if e.status == "rejected"]
    assert [e.run_id for e in rejected] == [RUN, OTHER]
    assert rejected[0].details["reason"] == "approval_timeout"
    assert rejected[0].summary == "rejected: not approved within 2h"
    assert gated.backend.starts == []
    assert "when its approval timed out" in refusal(gated.ports, command("approve"))
    assert gated.backend.starts == []


def test_a_run_approved_before_its_timeout_is_not_expired(
    settings: Settings, tmp_path: Path
) -> None:
    gated = gated_ports(settings, tmp_path)
    deliver(gated.ports, deploy_request(gated.ports))
    deliver(gated.ports, command("approve"))
    assert expire_held_runs(gated.ports, datetime(2030, 1, 1, tzinfo=UTC)) == []
    assert gated.backend.starts == [RUN]
    assert "pipeline.rejected" not in gated.publisher.types()
