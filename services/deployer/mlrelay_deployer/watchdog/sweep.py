"""One watchdog pass: the open runs (stuck? past their deadline? ended without a word?), then
the schedules' new slots (missed?). Cost per pass: one list of `open/` plus, per open run, its
index entry, its ledger and its history summary; per schedule its checkpoint (docs/watchdog.md
has the measured figures)."""

from __future__ import annotations

import structlog

from mlrelay.history import read_summary
from mlrelay.ports.protocols import JobState
from mlrelay.stage.ledger import read_run
from mlrelay.stage.open_runs import list_open, mark_settled
from mlrelay_deployer.approval_gate import gate_of
from mlrelay_deployer.watchdog.deadlines import check_deadline
from mlrelay_deployer.watchdog.dependencies import WatchdogDeps
from mlrelay_deployer.watchdog.findings import Finding, PassReport
from mlrelay_deployer.watchdog.missed_ticks import check_schedules
from mlrelay_deployer.watchdog.stalled import announce_stuck, judge_run

log = structlog.get_logger()


def run_pass(deps: WatchdogDeps) -> PassReport:
    report = PassReport()
    for run_id in deps.expire():  # held runs whose approval timed out: one rejection each
        what = "not approved within its approval_timeout: rejected"
        report.findings.append(Finding("approval_timeout", run_id, "", "pipeline", what, True))
    for run_id in deps.auto_promote():  # canaries past auto_promote_after: promote asked
        what = "a canary past its auto_promote_after: promote requested"
        report.findings.append(Finding("auto_promote", run_id, "", "promotion", what, True))
    check_open_runs(deps, report)
    check_schedules(deps, report)
    log.info(
        "watchdog_pass_done",
        open_runs=report.open_runs,
        schedules=report.schedules,
        slots_checked=report.slots_checked,
        findings=len(report.findings),
        new=sum(1 for f in report.findings if f.first),
    )
    return report


def check_open_runs(deps: WatchdogDeps, report: PassReport) -> None:
    ports = deps.ports
    registry = ports.registry
    for run in list_open(ports.store):
        if read_summary(ports.store, run.pipeline, run.run_id) is not None:
            mark_settled(ports.store, run.run_id)  # settled; its index entry outlived it
            continue
        report.open_runs += 1
        spec = registry.pipelines.get(run.pipeline)
        if spec is None:
            log.warning("open_run_of_unknown_pipeline", run_id=run.run_id, pipeline=run.pipeline)
            continue
        records = read_run(ports.store, run.run_id)
        gate = gate_of(records)
        if gate is not None and gate.decision == "rejected":
            mark_settled(ports.store, run.run_id)  # rejected at the approval gate: it is over
            continue
        judged = judge_run(run, records, spec.watch, deps.now(), deps.ask_backend)
        if isinstance(judged, JobState):
            published = deps.report(run.run_id, run.pipeline, judged)
            what = f"the service says {judged.state}: reported as {judged.status}"
            report.findings.append(
                Finding("reported", run.run_id, run.pipeline, "pipeline", what, published)
            )
            continue  # settled now: no deadline alert for a run that just ended
        if judged is not None:
            report.findings += announce_stuck(deps, run, judged, spec.watch)
        found = check_deadline(deps, run)
        if found is not None:
            report.findings.append(found)
