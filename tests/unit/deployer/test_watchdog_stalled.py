"""Where an open run stands, from its ledger and the service's answer: each wait is stuck only
past its own window (`max_pending` before a stage starts, `max_runtime` while it runs), a
terminal answer is handed back to be reported, and a final record is left to its own event."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mlrelay.ports.protocols import JobState
from mlrelay.registry import WatchSpec
from mlrelay.stage.open_runs import OpenRun
from mlrelay.stage.records import StageRecord
from mlrelay_deployer.watchdog.stalled import REPORT_GRACE, Stall, judge_run

T0 = datetime(2026, 11, 30, 5, 0, tzinfo=UTC)
RUN = OpenRun("penguins-r1", "penguins", T0.isoformat(), T0.isoformat(), "schedule", "default")
WATCH = WatchSpec(max_pending="30m", max_runtime="2h")


def _done(stage: str, at: datetime, result: dict[str, object] | None = None) -> StageRecord:
    return StageRecord(stage, "done", at.isoformat(), None, at.isoformat(), result or {})


def _ledger(
    *, snapshot: StageRecord | None = None, deploy: StageRecord | None = None
) -> dict[str, StageRecord]:
    records = {"trigger": _done("trigger", T0, {"accepted_at": T0.isoformat()})}
    if snapshot is not None:
        records["snapshot"] = snapshot
    if deploy is not None:
        records["pipeline"] = deploy
    return records


def _at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_accepted_without_a_snapshot_is_stuck_only_after_max_pending() -> None:
    assert judge_run(RUN, _ledger(), WATCH, _at(30), None) is None
    stall = judge_run(RUN, _ledger(), WATCH, _at(31), None)
    assert isinstance(stall, Stall) and (stall.stage, stall.limit) == ("snapshot", "30m")


def test_a_running_snapshot_has_max_runtime() -> None:
    running = StageRecord("snapshot", "running", _at(1).isoformat(), _at(2).isoformat())
    assert judge_run(RUN, _ledger(snapshot=running), WATCH, _at(100), None) is None
    stall = judge_run(RUN, _ledger(snapshot=running), WATCH, _at(122), None)
    assert isinstance(stall, Stall) and stall.why == "snapshot still running"


def test_snapshotted_but_never_submitted_is_stuck_at_the_pipeline() -> None:
    ledger = _ledger(snapshot=_done("snapshot", _at(5)))
    assert judge_run(RUN, ledger, WATCH, _at(34), None) is None
    stall = judge_run(RUN, ledger, WATCH, _at(36), None)
    assert isinstance(stall, Stall) and stall.stage == "pipeline" and not stall.submitted


def test_the_services_answer_decides_for_a_submitted_run() -> None:
    ledger = _ledger(
        snapshot=_done("snapshot", _at(5)),
        deploy=_done("pipeline", _at(6), {"status": "submitted", "job_name": "j"}),
    )
    pending = JobState("PIPELINE_STATE_PENDING", "pending")
    running = JobState("PIPELINE_STATE_RUNNING", "running", started_at=_at(40))
    failed = JobState("PIPELINE_STATE_FAILED", "failed")
    assert judge_run(RUN, ledger, WATCH, _at(35), lambda r, rec: pending) is None
    stuck = judge_run(RUN, ledger, WATCH, _at(37), lambda r, rec: pending)
    assert isinstance(stuck, Stall) and stuck.job_state == "PIPELINE_STATE_PENDING"
    assert judge_run(RUN, ledger, WATCH, _at(150), lambda r, rec: running) is None  # 110 min
    assert isinstance(judge_run(RUN, ledger, WATCH, _at(161), lambda r, rec: running), Stall)
    assert judge_run(RUN, ledger, WATCH, _at(7), lambda r, rec: failed) == failed
    unknown = judge_run(RUN, ledger, WATCH, _at(37), lambda r, rec: None)
    assert isinstance(unknown, Stall) and "no such job" in unknown.why


def test_a_final_record_is_left_to_its_own_event() -> None:
    ledger = _ledger(
        snapshot=_done("snapshot", _at(5)),
        deploy=_done("pipeline", _at(6), {"status": "succeeded"}),
    )
    asked: list[str] = []
    assert judge_run(RUN, ledger, WATCH, _at(999), lambda r, rec: asked.append(r)) is None  # type: ignore[func-returns-value]
    assert asked == []


def test_a_job_that_just_ended_is_left_to_its_own_reporters_for_the_grace() -> None:
    # the exit handler's report carries the metrics the gates judge: the watchdog reports an end
    # itself only once the job's own reporters have had REPORT_GRACE to say it
    ledger = _ledger(
        snapshot=_done("snapshot", _at(5)),
        deploy=_done("pipeline", _at(6), {"status": "submitted", "job_name": "j"}),
    )
    ended = JobState("PIPELINE_STATE_SUCCEEDED", "succeeded", ended_at=_at(60))
    assert judge_run(RUN, ledger, WATCH, _at(60) + REPORT_GRACE / 2, lambda r, rec: ended) is None
    late = _at(60) + REPORT_GRACE + timedelta(seconds=1)
    assert judge_run(RUN, ledger, WATCH, late, lambda r, rec: ended) == ended


def test_a_held_run_waits_for_its_approval_not_for_max_pending() -> None:
    ledger = _ledger(snapshot=_done("snapshot", _at(5)))
    ledger["approval"] = _done("approval", _at(6), {"run_id": RUN.run_id})
    assert judge_run(RUN, ledger, WATCH, _at(6 * 60), None) is None
    del ledger["approval"]
    assert isinstance(judge_run(RUN, ledger, WATCH, _at(6 * 60), None), Stall)


def test_a_local_run_recorded_as_running_is_judged_by_what_its_runner_says() -> None:
    # the local runner's deploy record stays `running` while the job runs: past max_pending it is
    # not "a submission that never finished" while the child says it is running
    ledger = _ledger(
        snapshot=_done("snapshot", _at(5)),
        deploy=StageRecord("pipeline", "running", _at(6).isoformat(), _at(6).isoformat()),
    )
    running = JobState("RUNNING", "running", started_at=_at(6))
    assert judge_run(RUN, ledger, WATCH, _at(60), lambda r, rec: running) is None
    stuck = judge_run(RUN, ledger, WATCH, _at(130), lambda r, rec: running)
    assert isinstance(stuck, Stall) and stuck.limit == "2h" and stuck.submitted
    no_job = judge_run(RUN, ledger, WATCH, _at(60), lambda r, rec: None)
    assert isinstance(no_job, Stall) and no_job.why == "submission never finished"
