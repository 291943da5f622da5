"""Every key mlrelay writes in the bucket (GCS, or `$MLRELAY_HOME/bucket/` locally), in one place.

```
runs/<run_id>/<stage>.json                             the run's ledger: a record per stage
runs/<run_id>/<stage>.published                        empty: the stage's messages went out
runs/<run_id>/approval.json                            the approval gate held the run (its request)
runs/<run_id>/decision.json                            approved or rejected: the first decision wins
runs/<run_id>/approval.published                       empty: `pipeline.held` went out
runs/<run_id>/decision.published                       empty: the rejection's event went out
approvals/held/<run_id>                                empty: a run waiting for approval (index)
runs/<run_id>/outcome.json                             the job's end as the service reported it
runs/<run_id>/promotion.json                           the run's model on its endpoint (canary,
                                                       promoted, rolled back: PromotionRecord)
promotions/<run_id>/deploy.json                        the claim of the run's promotion (upload,
                                                       deploy): one model version, one deployment
promotions/<run_id>/decision.json                      promote or roll back: the first decision wins
promotions/<run_id>/<status>.published                 empty: `promotion.<status>` went out
promotions/canaries/<run_id>.json                      an undecided canary (the index the watchdog
                                                       reads for `auto_promote_after`)
promotions/endpoints/<endpoint>.lock                   held while a promotion moves the endpoint
rejected/<rejection_id>.json                           a message that can never succeed, kept
deadletters/<subscription>/<message_id>.json           a message that failed too often, kept
snapshots/<dataset>/<run_id>/part-*.parquet            the snapshot's data, written once
snapshots/<dataset>/<run_id>/manifest.json             schema, rows, files and checksums (last)
snapshots/<dataset>/latest.json                        the newest complete manifest
notifications/<run_id>/<event_type>[-<message>].json   one claim per notification
notifications/<run_id>/message.json                    the run's one Slack message (bot mode)
notifications/<run_id>/missed-card.json                a missed slot's card (bot mode)
notifications/<run_id>/previous-outcome.json           the run before it, as first seen
notifications/pipelines/<pipeline>/last-outcome.json   the pipeline's latest outcome
notifications/undelivered/<run_id>/<event_type>.json   a notification Slack did not take, kept
history/<pipeline>/<run_id>.json                       a finished run's summary (mlrelay.history)
jobs/<run_id>/                                         a job backend's output folder: `model/`
                                                       ($AIP_MODEL_DIR) and `metrics.json`
commands/<run_id>/<action>-<state>.json                one claim per command in one run state
commands/<run_id>/<action>-<state>.done.json           its consumer's claim: carried out once
commands/<run_id>/<action>-<state>.published           empty: the command's outcome event went out
commands/<run_id>/attempts.json                        the run's later attempts, one per command
open/<run_id>.json                                     a run without a final outcome (the index
                                                       the watchdog reads; the notifier removes it)
watchdog/stuck/<run_id>/<stage>.json                   one claim per stuck run and stage
watchdog/deadlines/<run_id>.json                       one claim per run past its deadline
watchdog/schedules/<owner>/<schedule>.json             how far the schedule's slots were checked
watchdog/missed/<owner>/<schedule>/<slot>.json         one claim per missed slot
```

and, on the local disk only, `$MLRELAY_HOME/pipeline-runs/<run_id>/` (kfp.local's run folder,
with the completion reporter's `outbox/`).
"""

from __future__ import annotations

from typing import Literal

LedgerStage = Literal["trigger", "snapshot", "pipeline"]
"""The stages with a ledger record; the same names as the lifecycle events' `stage`."""

RUNS = "runs/"
REJECTED = "rejected/"
DEAD_LETTERS = "deadletters/"
SNAPSHOTS = "snapshots/"
NOTIFICATIONS = "notifications/"
UNDELIVERED = NOTIFICATIONS + "undelivered/"
COMMANDS = "commands/"
HELD = "approvals/held/"
OPEN_RUNS = "open/"
WATCHDOG = "watchdog/"
JOBS = "jobs/"
PROMOTIONS = "promotions/"
CANARIES = PROMOTIONS + "canaries/"
PIPELINE_RUNS = "pipeline-runs"  # a folder of MLRELAY_HOME, not of the bucket


def run_prefix(run_id: str) -> str:
    return f"{RUNS}{run_id}/"


def ledger(run_id: str, stage: LedgerStage) -> str:
    return f"{run_prefix(run_id)}{stage}.json"


def published(run_id: str, stage: LedgerStage) -> str:
    """Written (create-only, empty) once a finished stage's event and request are published."""
    return f"{run_prefix(run_id)}{stage}.published"


def promotion(run_id: str) -> str:
    """The run's promotion record (mlrelay.promotion_record.PromotionRecord)."""
    return f"{run_prefix(run_id)}promotion.json"


def promotion_deploy(run_id: str) -> str:
    """The claim of the run's promotion (upload, then deploy beside the champion): once."""
    return f"{PROMOTIONS}{run_id}/deploy.json"


def promotion_decision(run_id: str) -> str:
    """Promote or roll back a canary (a person, `auto_promote_after`, or a newer run's canary
    superseding it): create-only, so the first decision wins."""
    return f"{PROMOTIONS}{run_id}/decision.json"


def promotion_endpoint_lock(endpoint: str) -> str:
    """Held while a promotion moves the endpoint's models or split: one at a time."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in endpoint)
    return f"{PROMOTIONS}endpoints/{safe}.lock"


def promotion_published(run_id: str, status: str) -> str:
    """Written (create-only, empty) once the run's `promotion.<status>` event went out."""
    return f"{PROMOTIONS}{run_id}/{status}.published"


def canary(run_id: str) -> str:
    """An index entry per undecided canary: the watchdog and a newer promotion list these,
    not every run."""
    return f"{CANARIES}{run_id}.json"


def job_output(run_id: str) -> str:
    """The folder a `local_job` / `vertex_custom_job` writes its model and metrics in."""
    return f"{JOBS}{run_id}/"


def job_outcome(run_id: str) -> str:
    """The claim of the run's final event learnt from the pipeline service (the log relay or the
    watchdog, whichever comes first): one per run."""
    return f"{run_prefix(run_id)}outcome.json"


def rejected(rejection_id: str) -> str:
    return f"{REJECTED}{rejection_id}.json"


def dead_letter(subscription: str, message_id: str) -> str:
    """`subscription`: the short name (the last part of its path)."""
    return f"{DEAD_LETTERS}{subscription}/{message_id}.json"


def snapshot_prefix(dataset: str, run_id: str) -> str:
    return f"{SNAPSHOTS}{dataset}/{run_id}/"


def manifest(dataset: str, run_id: str) -> str:
    return snapshot_prefix(dataset, run_id) + "manifest.json"


def latest_pointer(dataset: str) -> str:
    return f"{SNAPSHOTS}{dataset}/latest.json"


def notification(run_id: str, name: str) -> str:
    """`name`: the event type, with the dead-lettered message's id for a dead letter."""
    return f"{NOTIFICATIONS}{run_id}/{name}.json"


def run_message(run_id: str) -> str:
    return notification(run_id, "message")


def previous_outcome(run_id: str) -> str:
    return notification(run_id, "previous-outcome")


def last_outcome(pipeline: str) -> str:
    return f"{NOTIFICATIONS}pipelines/{pipeline}/last-outcome.json"


def undelivered_prefix(run_id: str) -> str:
    return f"{UNDELIVERED}{run_id}/"


def undelivered(run_id: str, event_type: str) -> str:
    return f"{undelivered_prefix(run_id)}{event_type}.json"


def command(run_id: str, action: str, state: str) -> str:
    """The claim of one command (`retry`, `cancel`, ...) on a run in one state (a digest of its
    ledger): Slack's retries and concurrent clicks find it; the next state gets a new one."""
    return f"{COMMANDS}{run_id}/{action}-{state}.json"


def command_done(run_id: str, action: str, state: str) -> str:
    """The consumer's claim on one command (the door's claim is `command`): a redelivered
    command finds it and does not act twice."""
    return f"{COMMANDS}{run_id}/{action}-{state}.done.json"


def command_published(run_id: str, action: str, state: str) -> str:
    """Written (create-only, empty) once the carried-out command's lifecycle event went out."""
    return f"{COMMANDS}{run_id}/{action}-{state}.published"


def attempts(run_id: str) -> str:
    """The attempts of a logical run (retries, reruns), kept with its first run's id: the
    command's `action_key` names each, so a command delivered again makes no second attempt."""
    return f"{COMMANDS}{run_id}/attempts.json"


def approval(run_id: str) -> str:
    """The approval gate's record of a held run (a ledger record, with the held DeployRequest)."""
    return f"{run_prefix(run_id)}approval.json"


def approval_published(run_id: str) -> str:
    return f"{run_prefix(run_id)}approval.published"


def decision(run_id: str) -> str:
    """Approved or rejected (by a person, or the timeout): create-only, so the first wins."""
    return f"{run_prefix(run_id)}decision.json"


def decision_published(run_id: str) -> str:
    return f"{run_prefix(run_id)}decision.published"


def held(run_id: str) -> str:
    """An index entry per run waiting for approval: the timeout lists these, not every run."""
    return f"{HELD}{run_id}"


def open_run(run_id: str) -> str:
    """A run the trigger accepted and nobody has settled yet: the watchdog lists these, not
    the whole ledger."""
    return f"{OPEN_RUNS}{run_id}.json"


def stuck(run_id: str, stage: str) -> str:
    """The watchdog's claim on one `<stage>.stuck` event: once per run and stage."""
    return f"{WATCHDOG}stuck/{run_id}/{stage}.json"


def deadline_missed(run_id: str) -> str:
    """The watchdog's claim on the run's `pipeline.deadline_missed` (its result: the deadline);
    the notifier reads it to say how late a later success was."""
    return f"{WATCHDOG}deadlines/{run_id}.json"


def schedule_checked(owner: str, schedule: str) -> str:
    """The latest slot of the schedule the watchdog has checked (so a pass reads only new
    slots, not the whole lookback window)."""
    return f"{WATCHDOG}schedules/{owner}/{schedule}.json"


def missed_slot(owner: str, schedule: str, slot: str) -> str:
    """The watchdog's claim on one `schedule.missed` (`slot`: UTC, like 20260301t060000z)."""
    return f"{WATCHDOG}missed/{owner}/{schedule}/{slot}.json"
