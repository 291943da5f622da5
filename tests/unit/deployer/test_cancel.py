"""What a cancel command may stop: the run's state from its ledger and history decides, before
any backend is asked (tests/integration/deployer/test_cancel_*.py ask the backends)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from mlrelay.adapters.local_folder import LocalFolderStore
from mlrelay.config.settings import Settings
from mlrelay.contracts import RunCommand
from mlrelay.errors import PermanentError
from mlrelay.history import RunSummary, write_summary
from mlrelay.ports.container import Ports
from mlrelay.registry import load_registry
from mlrelay.stage.ledger import StageRecord
from mlrelay_deployer.cancel import cancelled_event, command_state, job_to_cancel
from tests.helpers import REGISTRY

RUN = "penguins-demo-3-0123456789ab"
AT = datetime(2026, 11, 23, 5, 30, tzinfo=UTC)
COMMAND = RunCommand(
    action="cancel", run_id=RUN, pipeline="penguins", requested_by="cli:ops", requested_at=AT,
    source="cli", action_key=f"{RUN}/cancel/00ff00ff00ff00ff",
)  # fmt: skip
TRIGGER = StageRecord("trigger", "done", AT.isoformat(), result={"pipeline": "penguins"})


def ports(settings: Settings, tmp_path: Path, backend: str = "vertex") -> Ports:
    registry = load_registry(REGISTRY)
    spec = registry.pipelines["penguins"].model_copy(update={"backend": backend})
    registry = registry.model_copy(update={"pipelines": {"penguins": spec}})
    return Ports(settings, store=LocalFolderStore(tmp_path), registry=registry)


def pipeline(state: str, **result: object) -> StageRecord:
    return StageRecord("pipeline", state, AT.isoformat(), result=dict(result) or None)  # type: ignore[arg-type]


def refused(ports: Ports, records: dict[str, StageRecord]) -> str:
    with pytest.raises(PermanentError) as caught:
        job_to_cancel(ports, COMMAND, records)
    assert caught.value.field == "run_id"
    return caught.value.problem


def test_a_submitted_run_gives_the_job_the_ledger_recorded(
    settings: Settings, tmp_path: Path
) -> None:
    job = "projects/p/locations/r/pipelineJobs/" + RUN
    records = {"trigger": TRIGGER, "pipeline": pipeline("done", status="submitted", job_name=job)}
    assert job_to_cancel(ports(settings, tmp_path), COMMAND, records) == job


def test_states_that_cannot_be_cancelled_are_named(settings: Settings, tmp_path: Path) -> None:
    p = ports(settings, tmp_path)
    snapshot = StageRecord("snapshot", "running", AT.isoformat())
    assert refused(p, {"trigger": TRIGGER}) == f"{RUN} is not submitted yet (trigger stage)"
    assert refused(p, {"trigger": TRIGGER, "snapshot": snapshot}) == (
        f"{RUN} is not submitted yet (snapshot stage)"
    )
    assert refused(p, {"trigger": TRIGGER, "pipeline": pipeline("running")}) == (
        f"{RUN} is being submitted right now"
    )
    assert "could not start" in refused(p, {"trigger": TRIGGER, "pipeline": pipeline("failed")})
    done = pipeline("done", status="succeeded")
    assert refused(p, {"trigger": TRIGGER, "pipeline": done}) == (
        f"{RUN} has already ended (succeeded)"
    )
    recurring = pipeline("done", status="submitted", details={"kind": "recurring_run"})
    assert "recurring run" in refused(p, {"trigger": TRIGGER, "pipeline": recurring})
    other = StageRecord("trigger", "done", AT.isoformat(), result={"pipeline": "other"})
    assert refused(p, {"trigger": other}) == f"{RUN!r} is not a run of penguins"


def test_a_history_summary_is_final_whatever_the_ledger_says(
    settings: Settings, tmp_path: Path
) -> None:
    p = ports(settings, tmp_path)
    write_summary(p.store, RunSummary(run_id=RUN, pipeline="penguins", status="failed"))
    records = {"trigger": TRIGGER, "pipeline": pipeline("done", status="submitted")}
    assert refused(p, records) == f"{RUN} has already ended (failed)"


@pytest.mark.parametrize("backend", ["local", "local_job"])
def test_a_local_run_in_progress_is_its_own_job(
    settings: Settings, tmp_path: Path, backend: str
) -> None:
    records = {"trigger": TRIGGER, "pipeline": pipeline("running")}
    assert job_to_cancel(ports(settings, tmp_path, backend), COMMAND, records) == RUN


def test_the_cancelled_event_says_who_when_and_from_where_and_nothing_else() -> None:
    event = cancelled_event(COMMAND, {"links": {"console": "https://c.example"}})
    assert event.event_type == "pipeline.cancelled"
    assert event.details == {
        "command": {
            "action": "cancel",
            "requested_by": "cli:ops",
            "requested_at": AT.isoformat(),
            "source": "cli",
        }
    }
    assert event.links == {"console": "https://c.example"}
    assert command_state(COMMAND) == "00ff00ff00ff00ff"


def test_a_held_run_is_not_cancelled_but_rejected(settings: Settings, tmp_path: Path) -> None:
    p = ports(settings, tmp_path)
    held = StageRecord("approval", "done", AT.isoformat(), result={"run_id": RUN})
    assert refused(p, {"trigger": TRIGGER, "approval": held}) == (
        f"{RUN} is held for approval, not running"
    )
    rejected = StageRecord("decision", "done", AT.isoformat(), result={"decision": "rejected"})
    assert refused(p, {"trigger": TRIGGER, "approval": held, "decision": rejected}) == (
        f"{RUN} has already ended (rejected)"
    )
