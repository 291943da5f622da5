"""Who hears what: the registry's `notify:` policy, and the pipeline's last outcome that
`on_success: on_recovery` needs.

Failures (from the `notify.failures.after`-th in a row: see `failure_alerting`), rejections, dead
letters, cancelled runs (a person stopped them: the card says so, in
the thread without the failure's broadcast to the channel) and successes that missed a metric
gate (`succeeded_with_regression`) are always posted. A success is posted always, never, or only
when the pipeline's previous run failed or regressed. Progress (accepted, snapshot ready,
submitted) is posted when `notify.progress` is on (by default only with `on_success: always`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from mlrelay.contracts import LifecycleEvent
from mlrelay.errors import TransientError
from mlrelay.history import RunSummary, list_summaries
from mlrelay.ports.protocols import ObjectStore
from mlrelay.registry import NotifySpec
from mlrelay.stage import keys

# `retried`: a person acted on the run's card, and its thread is where the new attempt posts;
# `held`: the approval gate waits for a person, who has to hear of it
ALWAYS = {
    "held",
    "failed",
    "cancelled",
    "rejected",
    "dead_lettered",
    "succeeded_with_regression",
    "retried",
    "stuck",  # the watchdog's findings: a stalled run, a missed deadline, a missed slot
    "deadline_missed",
    "missed",
}
OUTCOMES = {"succeeded", "failed", "cancelled"}
BAD = {"failed", "succeeded_with_regression"}  # outcomes a later success recovers from


def wants_post(
    event: LifecycleEvent, spec: NotifySpec, previous: str | None, *, status: str | None = None
) -> tuple[bool, str]:
    """(post it?, why) for this event under this pipeline's policy; `status`: the notifier's
    verdict on the run when it differs from the event's (a success that missed a gate)."""
    status = status or event.status
    if status in ALWAYS:
        return True, f"{status}: always posted"
    if status == "succeeded":
        if spec.on_success == "always":
            return True, "on_success: always"
        if spec.on_success == "never":
            return False, "on_success: never"
        if previous in BAD:
            return True, f"on_success: on_recovery, and the previous run {previous}"
        return False, f"on_success: on_recovery, and the previous run {previous or 'is unknown'}"
    if spec.posts_progress:
        return True, "progress updates are on"
    return False, "progress updates are off"


def outcome_key(pipeline: str) -> str:
    return keys.last_outcome(pipeline)


def previous_outcome(
    store: ObjectStore, event: LifecycleEvent, *, status: str | None = None
) -> str | None:
    """The outcome of the pipeline's run before this one; records this run's outcome.

    The answer is kept per run (`notifications/<run_id>/previous-outcome.json`, create-only), so a
    redelivered event gets the same answer after the pointer has moved on to this run.
    """
    if event.pipeline is None or event.status not in OUTCOMES:
        return None
    run_key = keys.previous_outcome(event.run_id)
    kept = store.read(run_key)
    if kept is not None:
        return json.loads(kept).get("previous")  # type: ignore[no-any-return]
    pointer = outcome_key(event.pipeline)
    found = store.read_versioned(pointer)
    last = json.loads(found[0]) if found else None
    previous = last["status"] if last and last["run_id"] != event.run_id else None
    if not store.create(run_key, json.dumps({"previous": previous}).encode()):
        return json.loads(store.read(run_key) or b"{}").get("previous")  # type: ignore[no-any-return]
    record = json.dumps(
        {
            "run_id": event.run_id,
            "status": status or event.status,
            "occurred_at": event.occurred_at.isoformat(),
        }
    ).encode()
    for _ in range(5):  # move the pointer unless a later outcome is already there
        if last is not None and last["occurred_at"] > event.occurred_at.isoformat():
            break
        moved = (
            store.create(pointer, record)
            if found is None
            else store.replace(pointer, record, found[1])
        )
        if moved:
            break
        found = store.read_versioned(pointer)
        last = json.loads(found[0]) if found else None
    else:
        raise TransientError(f"{pointer}: too many concurrent updates; retry")
    return previous


@dataclass(frozen=True)
class FailureAlerting:
    """What `notify.failures.after` makes of one final event."""

    wanted: bool
    why: str
    recovered_after: int | None = None  # a success ending an alerted streak of this many


def trailing_failures(summaries: list[RunSummary]) -> int:
    """Failed runs in a row at the end of `summaries` (oldest first). A cancelled run (a person
    stopped it) neither breaks nor extends a streak; any other outcome ends it."""
    streak = 0
    for summary in reversed(summaries):
        if summary.status == "cancelled":
            continue
        if summary.status != "failed":
            break
        streak += 1
    return streak


def failure_alerting(
    store: ObjectStore, event: LifecycleEvent, spec: NotifySpec, status: str
) -> FailureAlerting | None:
    """For a flapping pipeline (`notify.failures.after: N` > 1): a failure is alerted from the
    Nth in a row on (earlier ones are quiet: the run's card, if it has one, still turns red in
    place), and the next success after an alerted streak is posted as "recovered" whatever
    `on_success` says. None: the usual policy applies (N = 1, not a final outcome, or the run is
    not in the history, so there is nothing to count from).

    The streak is counted in the pipeline's history (mlrelay.history, logical-time order) up to
    this run, so a redelivered event gets the same answer after later runs have finished."""
    after = spec.failures.after
    if after <= 1 or event.pipeline is None or status not in ("failed", "succeeded"):
        return None
    summaries = list_summaries(store, event.pipeline)
    ids = [s.run_id for s in summaries]
    if event.run_id not in ids:
        return None
    position = ids.index(event.run_id)
    if status == "failed":
        streak = trailing_failures(summaries[: position + 1])
        if streak < after:
            return FailureAlerting(
                False, f"failure {streak} in a row: notify.failures.after is {after}"
            )
        return FailureAlerting(True, f"failure {streak} in a row (alerting from {after})")
    streak = trailing_failures(summaries[:position])
    if streak < after:
        return None
    return FailureAlerting(True, f"recovered after {streak} failures in a row", streak)
