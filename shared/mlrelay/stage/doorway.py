"""The doorway every function entry point goes through.

Unwrap the Pub/Sub CloudEvent, parse the typed message, bind the run id to the logs, call the
stage's plain function, and map the outcome: return (ack), or raise for redelivery. A permanent
problem becomes a `rejected` lifecycle event and the original message is kept in the bucket. A
configuration problem (ours, not the message's: an unreadable registry, a missing bucket) is
logged once per process and answered 503, so Pub/Sub redelivers the message until the set-up is
fixed or its attempts run out and it is dead-lettered; it is never rejected.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Callable
from typing import Any, TypeVar

import structlog
from cloudevents.http import CloudEvent
from werkzeug.exceptions import ServiceUnavailable

from mlrelay.config.topics import Topics
from mlrelay.contracts import (
    LifecycleEvent,
    Message,
    RunCommand,
    Stage,
    parse_message,
    utc_now,
)
from mlrelay.errors import ConfigurationError, ExplainedError, InvalidMessageError, PermanentError
from mlrelay.logs import bind_run
from mlrelay.ports.container import Ports, current_ports
from mlrelay.stage import keys
from mlrelay.stage.dead_letters import source_topic
from mlrelay.stage.envelope import PubsubMessage, from_cloudevent
from mlrelay.stage.run_identity import rejection_id

log = structlog.get_logger()
M = TypeVar("M", bound=Message)


class RedeliverAfterFix(ServiceUnavailable):
    """Answered 503: Pub/Sub redelivers (with its backoff; after the subscription's attempts the
    message is dead-lettered). An HTTP error, so the web framework answers it without logging a
    traceback per message: the doorway has already said what is wrong, once."""

    def __init__(self, error: ConfigurationError) -> None:
        super().__init__(description=f"configuration error, redeliver: {error}")
        self.error = error


_reported: set[str] = set()


def report_configuration_error(stage: Stage, exc: ConfigurationError) -> None:
    """One ERROR line per distinct problem per process; later deliveries say it at INFO."""
    if str(exc) in _reported:
        log.info("redelivering_until_configuration_fixed", stage=stage, field=exc.field)
        return
    _reported.add(str(exc))
    log.error(
        "configuration_error",
        stage=stage,
        field=exc.field,
        problem=exc.problem,
        fix=exc.fix,
        outcome="every message is redelivered until this is fixed; none is rejected",
    )


def handle_pubsub_event(
    event: CloudEvent,
    model: type[M],
    *,
    stage: Stage,
    work: Callable[[M, PubsubMessage, Ports], object],
) -> None:
    try:
        _handle(event, model, stage, work)
    except ConfigurationError as exc:
        report_configuration_error(stage, exc)
        raise RedeliverAfterFix(exc) from exc


def _handle(
    event: CloudEvent,
    model: type[M],
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
    bound = {"run_id": run_id} if run_id else {}
    with bind_run(pipeline=pipeline, stage=stage, message_id=message.message_id, **bound):
        if run_id:
            log.info("message_received", delivery_attempt=message.delivery_attempt)
        try:
            work(request, message, ports)
        except PermanentError as exc:
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


# the topic each stage's function reads (a field of Topics): where a rejected message came from
_READS: dict[Stage, str] = {
    "trigger": "runs",
    "snapshot": "snapshots",
    "pipeline": "deploys",
    "notify": "lifecycle",
    "delivery": "dead_letter",
}


def topic_read_by(stage: str, topics: Topics) -> str | None:
    field = _READS.get(stage)  # type: ignore[call-overload]
    return str(getattr(topics, field)) if field else None


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
    settings = ports.settings
    # the subscription names the topic (a stage's functions may read several: the deployer's
    # read deploys, commands and the log sink's entries); else the stage's own
    topic = (
        source_topic(message.subscription, settings.topics, settings.subscription_topics)
        if message.subscription
        else None
    )
    record = {
        "reason": str(exc),
        "field": exc.field,
        "stage": stage,
        "topic": topic
        or (
            settings.topics.commands
            if message.attributes.get("event_type") == RunCommand.kind  # the trigger reads both
            else topic_read_by(stage, settings.topics)
        ),
        "rejected_at": utc_now().isoformat(),
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
