"""Missed ticks: every slot of every schedule whose time plus `grace` has passed has an accepted
run for each member (the trigger's deterministic run ids: `mlrelay.schedules.expected`);
otherwise one `schedule.missed` per slot, naming the schedule, the slot and the likely causes.

A pass reads only the slots after the last one checked (`watchdog/schedules/<owner>/<name>.json`),
at most `lookback` back, so its cost is one read (and one write when a new slot came) per schedule
plus one read per member of each new slot. The first pass to see a schedule (a new deployment,
a schedule just added) only starts its checkpoint: the slots before it were never promised a
run, so a first deployment does not report two days of them. Paused schedules never alert:
their checkpoint moves on while they are paused, so resuming one does not report the pause.
CronSchedule is the slot oracle (DST gaps and overlaps as the trigger sees them). With
`on_missed: backfill` the same claim publishes the slot's RunRequest (trigger `backfill`), so
the trigger starts the very runs the tick would have.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import structlog

from mlrelay.contracts import LifecycleEvent
from mlrelay.errors import PermanentError
from mlrelay.registry.expectations import parse_window
from mlrelay.schedules.expected import backfill_request, slot_run_ids
from mlrelay.schedules.members import OwnedSchedule, all_schedules
from mlrelay.schedules.slots import CronSchedule
from mlrelay.stage import keys
from mlrelay.stage.ledger import run_once
from mlrelay_deployer.watchdog.dependencies import WatchdogDeps
from mlrelay_deployer.watchdog.findings import Finding, PassReport

log = structlog.get_logger()

LIKELY_CAUSES = (
    "the Cloud Scheduler job was paused or deleted outside mlrelay "
    "(`mlrelay schedules diff` shows it)",
    "the Scheduler job may not publish to the runs topic (IAM: roles/pubsub.publisher)",
    "the trigger function is down or failing (its logs, and `mlrelay deadletters list`)",
)


def slot_name(slot: datetime) -> str:
    return slot.strftime("%Y%m%dt%H%M%Sz")


def check_schedules(deps: WatchdogDeps, report: PassReport) -> None:
    registry = deps.ports.registry
    for owned in all_schedules(registry):
        report.schedules += 1
        try:
            check_schedule(deps, owned, report)
        except PermanentError as exc:  # e.g. a member the registry no longer resolves
            log.error(
                "schedule_not_checked",
                owner=owned.owner,
                schedule=owned.schedule.name,
                error=str(exc),
            )


def check_schedule(deps: WatchdogDeps, owned: OwnedSchedule, report: PassReport) -> None:
    store = deps.ports.store
    schedule = owned.schedule
    now = deps.now()
    checkpoint = keys.schedule_checked(owned.owner, schedule.name)
    raw = store.read(checkpoint)
    earliest = now - deps.lookback
    checked = datetime.fromisoformat(json.loads(raw)["checked_until"]) if raw else None
    start = max(checked, earliest) if checked is not None else earliest
    end = now - parse_window(schedule.grace)
    if checked is None:
        # the first pass to see this schedule (a new deployment, a schedule just added to the
        # registry): it is watched from now on; the slots before it were never promised a run
        store.write(checkpoint, json.dumps({"checked_until": end.isoformat()}).encode())
        log.info("schedule_watch_started", owner=owned.owner, schedule=schedule.name)
        return
    if end <= start:
        return
    cron = CronSchedule(schedule.cron, schedule.time_zone)
    new = [slot for slot in cron.between(start, end) if checked is None or slot > checked]
    if not schedule.paused:  # a paused schedule's slots are passed over, never reported
        for slot in new:
            report.slots_checked += 1
            found = check_slot(deps, owned, slot)
            if found is not None:
                report.findings.append(found)
    if new:  # no new slot: the checkpoint stays (a write saved per pass)
        store.write(checkpoint, json.dumps({"checked_until": end.isoformat()}).encode())


def check_slot(deps: WatchdogDeps, owned: OwnedSchedule, slot: datetime) -> Finding | None:
    ports = deps.ports
    expected = slot_run_ids(ports.registry, owned, slot)
    missing = [rid for rid in expected if ports.store.read(keys.ledger(rid, "trigger")) is None]
    if not missing:
        return None
    schedule = owned.schedule
    local = slot.astimezone(CronSchedule(schedule.cron, schedule.time_zone).zone)
    summary = (
        f"schedule {schedule.name} of {owned.owner} missed its slot "
        f"{local:%Y-%m-%d %H:%M %Z} ({slot:%Y-%m-%d %H:%M} UTC): "
        f"{len(missing)} of {len(expected)} run(s) never accepted"
    )
    backfill = schedule.on_missed == "backfill"
    pipeline = owned.owner if owned.kind == "pipeline" else None

    def publish() -> dict[str, Any]:
        backfilled = None
        if backfill:
            backfilled = ports.publish(backfill_request(owned, slot, requested_by="watchdog"))
        event = LifecycleEvent(
            run_id=missing[0],
            pipeline=pipeline,
            stage="schedule",
            status="missed",
            occurred_at=deps.now(),
            summary=summary + ("; backfill requested" if backfill else ""),
            details={
                "schedule": schedule.name,
                "owner": owned.owner,
                "slot": slot.isoformat(),
                "time_zone": schedule.time_zone,
                "missing_runs": missing,
                "likely_causes": list(LIKELY_CAUSES),
                "on_missed": schedule.on_missed,
                "logical_time": slot.isoformat(),
                "reported_by": "watchdog",
            },
        )
        message_id = ports.publish(event)
        return {"message_id": message_id, "backfill_message_id": backfilled}

    outcome = run_once(
        ports.store,
        keys.missed_slot(owned.owner, schedule.name, slot_name(slot)),
        "watchdog",
        publish,
        lease=ports.settings.claim_lease,
        now=deps.now,
    )
    if not outcome.reused:
        log.warning(
            "schedule_slot_missed",
            owner=owned.owner,
            schedule=schedule.name,
            slot=slot.isoformat(),
            missing=len(missing),
            backfill=backfill,
        )
    return Finding("missed", missing[0], owned.owner, "schedule", summary, not outcome.reused)
