"""What a finished stage re-publishes when it is asked again.

A duplicate delivery of a finished stage re-emits its results on purpose: the worker may have
died between recording the stage and publishing them, and the redelivery is what heals that. But
at three deliveries a message nearly every re-emit is an echo of what its reader already took.
So a *redelivery* (the same message again) re-publishes
- nothing once the stage's messages are known to be out: its `published` marker
  (`runs/<run>/<stage>.published`, written create-only after the last publish of the delivery
  that published them) or the next stage's ledger record (Pub/Sub holds that stage's own message
  until it is done, and the stage's event went out before its request: `pass_on` publishes in
  that order, and a failed publish stops the delivery);
- otherwise (the stage died between recording and publishing, or its publish is still under
  way) the request, and the lifecycle event unless the notifier has a claim for it
  (`notifications/<run>/<type>`; the notifier is the topic's one reader and keeps that claim for
  every event it took).

A *new request* for a run already recorded (a run request with another message id than the one
that made the trigger's record: `mlrelay run` again with the same dedup key, a publisher asking
again) is answered in full, the way a first delivery is: every stage re-emits its event and the
next stage's request, which carries the `mlrelay_rerequest` attribute (the new request's message
id) so the stages after it answer in full too, and whoever asked hears the run's outcome again.
The notifier's own claims still keep its messages to one per run.

Cost: one marker write (GCS Class A) per stage of a run, and on a duplicate only one to three
object reads (Class B); a first delivery publishes without looking. Each message it saves would
have cost a push per subscription, a function invocation and that function's own ledger read
(docs/benchmarks.md, bench/messages.py).
"""

from __future__ import annotations

import structlog

from mlrelay.contracts import DeployRequest, LifecycleEvent, SnapshotRequest
from mlrelay.ports.container import Ports
from mlrelay.stage import keys
from mlrelay.stage.envelope import PubsubMessage
from mlrelay.stage.ledger import StageOutcome

log = structlog.get_logger()

__all__ = [
    "RE_REQUEST",
    "mark_published",
    "pass_on",
    "publish_event",
    "re_request_of",
    "re_request_of_run",
]

RE_REQUEST = "mlrelay_rerequest"
"""Attribute of a stage's request that answers a new request: that request's message id."""


def re_request_of_run(
    message: PubsubMessage, outcome: StageOutcome, recorded_message_id: str | None
) -> str | None:
    """The trigger's view: a run request for a recorded run is a new request when its message id
    is not the recorded one (a redelivery keeps its message id). Its attributes are a
    publisher's, so they are not trusted for this."""
    if not outcome.reused or not message.message_id or not recorded_message_id:
        return None
    return message.message_id if message.message_id != recorded_message_id else None


def re_request_of(message: PubsubMessage) -> str | None:
    """A later stage's view: its request says so (set by the stage before it)."""
    return message.attributes.get(RE_REQUEST) or None


def publish_event(
    ports: Ports,
    outcome: StageOutcome,
    event: LifecycleEvent,
    re_request: str | None = None,
    *,
    last: bool = True,
) -> bool:
    """Publish `event` unless this is a redelivery and the event is out already (the stage's
    marker, or the notifier's claim). `last`: the stage publishes nothing after it, so mark."""
    stage = _ledger_stage(event)
    if re_request is None and outcome.reused:
        if last and _marked(ports, event.run_id, stage):
            log.info("echo_skipped", event_type=event.event_type, why="published before")
            return False
        heard = keys.notification(event.run_id, event.event_type)
        if ports.store.read(heard) is not None:
            log.info("echo_skipped", event_type=event.event_type, why="notifier has it")
            return False
    ports.publish(event, _asked(re_request))
    if last:
        mark_published(ports, event.run_id, stage)
    return True


def pass_on(
    ports: Ports,
    outcome: StageOutcome,
    event: LifecycleEvent,
    request: SnapshotRequest | DeployRequest,
    next_stage: keys.LedgerStage,
    re_request: str | None = None,
) -> None:
    """Publish the stage's event, then the next stage's request; a redelivery only what the
    next stage and the notifier have not taken; a new request all of it."""
    stage = _ledger_stage(event)
    if re_request is None and outcome.reused:
        if _marked(ports, request.run_id, stage):
            log.info("echo_skipped", event_type=request.kind, why="published before")
            return
        if ports.store.read(keys.ledger(request.run_id, next_stage)) is not None:
            log.info("echo_skipped", event_type=request.kind, why=f"{next_stage} started")
            return
    publish_event(ports, outcome, event, re_request, last=False)
    ports.publish(request, _asked(re_request))
    mark_published(ports, request.run_id, stage)


def _ledger_stage(event: LifecycleEvent) -> keys.LedgerStage:
    if event.stage not in ("trigger", "snapshot", "pipeline"):
        raise ValueError(f"{event.stage!r} is not a stage with a ledger record")
    return event.stage


def _marked(ports: Ports, run_id: str, stage: keys.LedgerStage) -> bool:
    return ports.store.read(keys.published(run_id, stage)) is not None


def mark_published(ports: Ports, run_id: str, stage: keys.LedgerStage) -> None:
    """Say that `stage`'s messages for `run_id` are out (idempotent)."""
    ports.store.create(keys.published(run_id, stage), b"")  # False: marked before, as well


def _asked(re_request: str | None) -> dict[str, str] | None:
    return {RE_REQUEST: re_request} if re_request else None
