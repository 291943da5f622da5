"""What a finished stage re-publishes when its message is delivered again.

A duplicate delivery of a finished stage re-emits its results on purpose: the worker may have
died between recording the stage and publishing them, and the redelivery is what heals that. But
at three deliveries a message nearly every re-emit is an echo of what its reader already took.
So a duplicate re-publishes
- nothing once the next stage has a ledger record: Pub/Sub holds that stage's own message until
  it is done, and the stage's event went out before its request (`pass_on` publishes in that
  order, and a failed publish stops the delivery), so some delivery published the event too or
  found the notifier had it;
- otherwise (the next stage never started: its request was lost or is not read yet) the request,
  and the lifecycle event unless the notifier has a claim for it (`notifications/<run>/<type>`;
  the notifier is the topic's one reader and keeps that claim for every event it took).

Each check is one object read (GCS Class B), on a duplicate only: a first delivery publishes
without looking. Each message it saves would have cost a push per subscription, a function
invocation and that function's own ledger read (docs/benchmarks.md, bench/messages.py).
"""

from __future__ import annotations

import structlog

from mlrelay.contracts import DeployRequest, LifecycleEvent, SnapshotRequest
from mlrelay.ports.container import Ports
from mlrelay.stage import keys
from mlrelay.stage.ledger import StageOutcome

log = structlog.get_logger()

__all__ = ["pass_on", "publish_event"]


def publish_event(ports: Ports, outcome: StageOutcome, event: LifecycleEvent) -> bool:
    """Publish `event` unless this is a duplicate and the notifier already took the event."""
    notified = keys.notification(event.run_id, event.event_type)
    if outcome.reused and ports.store.read(notified) is not None:
        log.info("echo_skipped", event_type=event.event_type, why="notifier has it")
        return False
    ports.publish(event)
    return True


def pass_on(
    ports: Ports,
    outcome: StageOutcome,
    event: LifecycleEvent,
    request: SnapshotRequest | DeployRequest,
    next_stage: keys.LedgerStage,
) -> None:
    """Publish the stage's event, then the next stage's request; a duplicate only what the
    next stage and the notifier have not taken."""
    if outcome.reused and ports.store.read(keys.ledger(request.run_id, next_stage)) is not None:
        log.info("echo_skipped", event_type=request.kind, why=f"{next_stage} started")
        return
    publish_event(ports, outcome, event)
    ports.publish(request)
