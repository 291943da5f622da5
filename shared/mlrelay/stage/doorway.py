"""The doorway every function entry point goes through.

Unwrap the Pub/Sub CloudEvent, parse the typed message, bind the run id to the logs, call the
stage's plain function, and map the outcome: return (ack), or raise for redelivery. A permanent
problem becomes a `rejected` lifecycle event and the original message is kept in the bucket.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Callable
from typing import Any, TypeVar

import structlog
from cloudevents.http import CloudEvent

from mlrelay.contracts import LifecycleEvent, Message, Stage, parse_message
from mlrelay.errors import ExplainedError, InvalidMessageError, PermanentError
from mlrelay.logs import bind_run
from mlrelay.ports.container import Ports, current_ports
from mlrelay.registry import RegistryError
from mlrelay.stage import keys
from mlrelay.stage.envelope import PubsubMessage, from_cloudevent
from mlrelay.stage.run_identity import rejection_id

log = structlog.get_logger()
M = TypeVar("M", bound=Message)


def handle_pubsub_event(
    event: CloudEvent,
    model: type[M],
    *,
    stage: Stage,
    work: Callable[[M, PubsubMessage, Ports], object],
) -> None:
    ports = current_ports()
    try:
        message = from_cloudevent(event)
    except InvalidMessageError as exc:
        message = PubsubMessage(
            data=json.dumps(event.data, default=str).encode(), message_id=str(event.get("id") or "")
        )
        reject_message(ports, stage, message, exc)
        return
    try:
        request = parse_message(model, message.data)
    except InvalidMessageError as exc:
        reject_message(ports, stage, message, exc)
        return
    run_id = getattr(request, "run_id", None)  # a RunRequest gets its id from the trigger
    pipeline = getattr(request, "pipeline", None)
    with bind_run(pipeline=pipeline, stage=stage, message_id=message.message_id):
        if run_id:
            structlog.contextvars.bind_contextvars(run_id=run_id)
            log.info("message_received", delivery_attempt=message.delivery_attempt)
        try:
            work(request, message, ports)
        except PermanentError as exc:
            reject_message(ports, stage, message, exc, pipeline=pipeline)
        except RegistryError as exc:
            # Today's handling, unchanged by giving configuration errors a class of their own:
            # an unreadable registry still rejects the message. Answering it for redelivery
            # instead (a bad release must not eat valid runs) is planned work, not done here.
            reject_message(ports, stage, message, exc, pipeline=pipeline)


def describe_original(message: PubsubMessage) -> dict[str, Any]:
    """The original message, as kept with a rejection or a dead letter."""
    kept: dict[str, Any] = {
        "message_id": message.message_id,
        "publish_time": message.publish_time.isoformat(),
        "attributes": message.attributes,
        "subscription": message.subscription,
        "data_base64": base64.b64encode(message.data).decode(),
    }
    with contextlib.suppress(UnicodeDecodeError):
        kept["data_text"] = message.data.decode()
    return kept


def reject_message(
    ports: Ports,
    stage: Stage,
    message: PubsubMessage,
    exc: ExplainedError,
    *,
    pipeline: str | None = None,
) -> None:
    """Ack a message that can never succeed: keep it, and tell people why."""
    rid = rejection_id(message.data, message.message_id)
    key = keys.rejected(rid)
    record = {
        "reason": str(exc),
        "field": exc.field,
        "stage": stage,
        "message": describe_original(message),
    }
    ports.store.create(key, json.dumps(record, indent=2).encode())
    with bind_run(run_id=rid):
        log.warning("message_rejected", field=exc.field, reason=str(exc))
        ports.publish(
            LifecycleEvent(
                run_id=rid,
                pipeline=pipeline,
                stage=stage,
                status="rejected",
                summary=f"{stage} rejected a message: {exc.field}",
                error=str(exc),
                details={
                    "field": exc.field,
                    "kept_at": ports.store.uri(key),
                    "message_id": message.message_id,
                },
            )
        )
