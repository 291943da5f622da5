"""What a finished stage re-publishes when it is asked again.

A duplicate delivery of a finished stage re-emits its results on purpose: the worker may have
died between recording the stage and publishing them, and the redelivery is what heals that. But
at three deliveries a message nearly every re-emit is an echo of what its reader already took.
So a *redelivery* (the same message again) re-publishes
- nothing once the next stage has a ledger record: Pub/Sub holds that stage's own message until
  it is done, and the stage's event went out before its request (`pass_on` publishes in that
  order, and a failed publish stops the delivery), so some delivery published the event too or
  found the notifier had it;
- otherwise (the next stage never started: its request was lost or is not read yet) the request,
  and the lifecycle event unless the notifier has a claim for it (`notifications/<run>/<type>`;
  the notifier is the topic's one reader and keeps that claim for every event it took).

A *new request* for a run already recorded (a run request with another message id than the one
that made the trigger's record: `mlrelay run` again with the same dedup key, a publisher asking
again) is answered in full, the way a first delivery is: every stage re-emits its event and the
next stage's request, which carries the `mlrelay_rerequest` attribute (the new request's message
id) so the stages after it answer in full too, and whoever asked hears the run's outcome again.
The notifier's own claims still keep its messages to one per run.

Each check is one object read (GCS Class B), on a duplicate only: a first delivery publishes
without looking. Each message it saves would have cost a push per subscription, a function
invocation and that function's own ledger read (docs/benchmarks.md, bench/messages.py).
"""

from __future__ import annotations

import structlog

from mlrelay.contracts import DeployRequest, LifecycleEvent, SnapshotRequest
from mlrelay.ports.container import Ports
from mlrelay.stage import keys
from mlrelay.stage.envelope import PubsubMessage
from mlrelay.stage.ledger import StageOutcome

log = structlog.get_logger()

__all__ = ["RE_REQUEST", "pass_on", "publish_event", "re_request_of", "re_request_of_run"]

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
    ports: Ports, outcome: StageOutcome, event: LifecycleEvent, re_request: str | None = None
) -> bool:
    """Publish `event` unless this is a redelivery and the notifier already took the event."""
    heard = keys.notification(event.run_id, event.event_type)
    if re_request is None and outcome.reused and ports.store.read(heard) is not None:
        log.info("echo_skipped", event_type=event.event_type, why="notifier has it")
        return False
    ports.publish(event, _asked(re_request))
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
    started = keys.ledger(request.run_id, next_stage)
    if re_request is None and outcome.reused and ports.store.read(started) is not None:
        log.info("echo_skipped", event_type=request.kind, why=f"{next_stage} started")
        return
    publish_event(ports, outcome, event, re_request)
    ports.publish(request, _asked(re_request))


def _asked(re_request: str | None) -> dict[str, str] | None:
    return {RE_REQUEST: re_request} if re_request else None
