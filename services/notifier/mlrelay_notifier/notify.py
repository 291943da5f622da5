"""Post each lifecycle event once, however often it is delivered, and never lose one.

- Dedup: `run_once` on `notifications/<run_id>/<event_type>.json`, so a redelivered event does not
  post twice.
- Bot token: the run has one message, updated in place as it moves on (accepted -> snapshot ->
  submitted -> succeeded/failed), with each status change as a reply in its thread (a failure
  is broadcast to the channel: an edit alone notifies nobody).
- Webhooks / console: one message per status change.
- A message Slack did not take is kept under `notifications/undelivered/` and the error goes
  back to Pub/Sub, which redelivers and finally dead-letters it; the dead-letter handler then
  says so (in the pipeline's channel, else the default one).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from typing import Any

import structlog

from mlrelay.contracts import LifecycleEvent
from mlrelay.errors import ConfigurationError, InvalidMessageError, PermanentError, TransientError
from mlrelay.history import read_summary
from mlrelay.logs import bind_run
from mlrelay.ports.container import Ports
from mlrelay.registry import GateSpec, NotifySpec, PipelineSpec
from mlrelay.stage import keys
from mlrelay.stage.dead_letters import keep_dead_letter, source_topic
from mlrelay.stage.doorway import describe_original
from mlrelay.stage.envelope import PubsubMessage
from mlrelay.stage.ledger import StageRecord, claim_attempt, read_run, run_once
from mlrelay.stage.run_identity import rejection_id
from mlrelay_notifier.chat import Chat, Posted
from mlrelay_notifier.chat_choice import as_chat, build_chat
from mlrelay_notifier.errors import ChatRefused, NotificationUndeliverable
from mlrelay_notifier.lateness import with_lateness
from mlrelay_notifier.missed_card import backfilled_card_view, remember_missed_card
from mlrelay_notifier.model_section import from_event, read_model
from mlrelay_notifier.policy import failure_alerting, previous_outcome, wants_post
from mlrelay_notifier.promotion_card import promotion_card_view
from mlrelay_notifier.render import ChatMessage, render_card, render_update
from mlrelay_notifier.retried import retried_card_view, thread_of_original
from mlrelay_notifier.run_message import (
    RunMessage,
    advance,
    claim_first_post,
    read_message,
    record_posted,
    release_claim,
)
from mlrelay_notifier.run_view import FINAL, RANK, RunView, build_run_view, on_run_card
from mlrelay_notifier.undelivered import (
    forget_undelivered,
    has_undelivered,
    keep_undelivered,
    read_undelivered,
)
from mlrelay_notifier.used_actions import used_actions
from mlrelay_notifier.verdict import REGRESSION, Verdict, judge, with_verdict

log = structlog.get_logger()

NOTIFIER_SUBSCRIPTION = "mlrelay-notifier"  # its function's name (mlrelay.config.functions)
QUIET = {"snapshot.started"}  # the snapshot's result follows within seconds
PROGRESS = {"accepted", "started", "completed", "submitted"}
# thread replies also sent to the channel: what someone has to act on
BROADCAST = {"failed", REGRESSION, "stuck", "deadline_missed"}


def notification_key(event: LifecycleEvent) -> str:
    suffix = None
    if event.status == "dead_lettered":
        suffix = event.details.get("message_id")
    elif event.status == "retried":  # a run may be retried more than once: one post per attempt
        suffix = event.details.get("attempt_run_id")
    elif event.event_type == "promotion.failed":  # a deploy, then a promote, may each fail
        said = f"{event.details.get('reason')}\n{event.error}".encode()
        suffix = hashlib.sha256(said).hexdigest()[:12]
    name = event.event_type + (f"-{suffix}" if suffix else "")
    return keys.notification(event.run_id, name)


def post_key(event: LifecycleEvent) -> str:
    """What tags this event's own post in Slack: the same on every delivery."""
    return notification_key(event).removeprefix(keys.NOTIFICATIONS).removesuffix(".json")


def run_message_key(run_id: str) -> str:
    """What tags the run's one top-level message (bot mode), whichever event posts it."""
    return f"{run_id}/run-message"


def notify_spec(ports: Ports, pipeline: str | None) -> NotifySpec:
    spec = _pipeline_spec(ports, pipeline)
    return spec.notify if spec is not None else NotifySpec()


def pipeline_gates(ports: Ports, pipeline: str | None) -> dict[str, GateSpec]:
    spec = _pipeline_spec(ports, pipeline)
    return dict(spec.gates) if spec is not None else {}


def _pipeline_spec(ports: Ports, pipeline: str | None) -> PipelineSpec | None:
    if pipeline is None:
        return None
    try:
        registry = ports.registry
    except ConfigurationError as exc:  # a broken registry must not silence failures
        log.warning("notify_registry_unreadable", error=str(exc))
        return None
    return registry.pipelines.get(pipeline)


def judged_view(
    ports: Ports,
    event: LifecycleEvent,
    records: dict[str, StageRecord],
    *,
    project: str | None,
    advance: bool = True,
    verdict: Verdict | None = None,
) -> tuple[RunView, Verdict | None]:
    """The run's view with the verdict on its final state (written to the history once the
    final event arrives: see mlrelay_notifier.verdict); `verdict`: one already reached."""
    view = build_run_view(event, records, project=project, advance=advance)
    if verdict is None:
        verdict = judge(event, view, records, ports.store, pipeline_gates(ports, view.pipeline))
    return with_lateness(ports.store, with_verdict(view, verdict)), verdict


def offers_buttons(ports: Ports, chat: Chat, pipeline: str | None) -> bool:
    """Bot mode (a webhook's message cannot take clicks) and a pipeline whose `actions`
    allowlist names someone: with an empty one every click would only be refused."""
    spec = _pipeline_spec(ports, pipeline) if chat.threads else None
    if spec is None:
        return False
    return bool(spec.actions.allowed_users or spec.actions.allowed_user_groups)


def with_actions(
    ports: Ports, chat: Chat, view: RunView, records: dict[str, StageRecord]
) -> RunView:
    """The card's buttons and used-button lines, from the ledger: every delivery of every
    event renders them alike (mlrelay_notifier.card_actions)."""
    details = view.details if view.status in ("cancelled", "rejected") else None
    return replace(
        view,
        used=used_actions(ports.store, view.run_id, records, details),
        interactive=offers_buttons(ports, chat, view.pipeline),
        model=view.model or read_model(ports.store, view.run_id),
    )


def route_for(chat: Chat, spec: NotifySpec) -> str | None:
    """The pipeline's channel (bot token) or named webhook; None = the default."""
    if chat.name == "slack-bot":
        return spec.slack_channel
    if chat.name == "slack-webhook":
        return spec.slack_webhook
    return None


def deliver(
    ports: Ports,
    chat: Chat,
    event: LifecycleEvent,
    message: ChatMessage,
    *,
    route: str | None,
    thread_ts: str | None = None,
    broadcast: bool = False,
    key: str | None = None,
) -> Posted:
    """Send; blocks Slack refuses are resent as text; a failure is kept and raised. `key`
    (default: the event's own) tags the post; after an earlier failed attempt for the run, or
    when this delivery took over a dead worker's claim (either may have posted without an
    answer), the bot looks the message up before posting again."""
    key = key or post_key(event)
    # a taken-over claim: the dead worker may have posted without recording it
    look_first = claim_attempt() > 1 or has_undelivered(ports.store, event.run_id)

    def send(msg: ChatMessage, to: str | None) -> Posted:
        opts: dict[str, Any] = {"thread_ts": thread_ts, "broadcast": broadcast, "key": key}
        try:
            return chat.send(msg, route=to, look_first=look_first, **opts)
        except ChatRefused as exc:
            if exc.code != "invalid_blocks":
                raise
            log.warning("notification_blocks_refused", event_type=event.event_type)
            return chat.send(msg.plain(), route=to, look_first=look_first, **opts)

    try:
        try:
            posted = send(message, route)
        except (TransientError, PermanentError) as exc:
            if event.status != "dead_lettered" or route is None or thread_ts:
                raise
            log.warning("notification_fallback_to_default", error=str(exc))
            posted = send(message, None)
    except (TransientError, PermanentError) as exc:
        key = keep_undelivered(ports.store, event, message.payload(), route=route, reason=str(exc))
        log.error("notification_undelivered", reason=str(exc), kept_at=key)
        if isinstance(exc, PermanentError):
            raise NotificationUndeliverable(str(exc)) from None
        raise
    forget_undelivered(ports.store, event)
    return posted


def _update(chat: Chat, card: ChatMessage, message: RunMessage) -> None:
    try:
        try:
            chat.update(card, channel=message.channel, ts=message.ts)
        except ChatRefused as exc:
            if exc.code != "invalid_blocks":
                raise
            chat.update(card.plain(), channel=message.channel, ts=message.ts)
    except ChatRefused as exc:  # e.g. someone deleted it: the thread reply still goes out
        log.warning("run_message_update_refused", error=str(exc))


def post_first_card(
    ports: Ports,
    chat: Chat,
    event: LifecycleEvent,
    card: ChatMessage,
    view: RunView,
    records: dict[str, StageRecord],
    *,
    route: str | None,
) -> RunMessage:
    """The run's first message, under the claim `claim_first_post` gave this delivery; a later
    attempt's message goes in its original's thread, where it was retried."""
    store = ports.store
    original = thread_of_original(store, event.run_id, records)
    try:
        posted = deliver(
            ports,
            chat,
            event,
            card,
            route=original.channel if original is not None else route,
            thread_ts=original.thread if original is not None else None,
            key=run_message_key(event.run_id),
        )
    except BaseException:
        release_claim(store, event.run_id)
        raise
    first = RunMessage(
        "posted",
        posted.channel,
        posted.ts or "",
        RANK[view.status],
        view.status,
        thread_ts=original.thread if original is not None else "",
    )
    record_posted(store, event.run_id, first)
    return first


def post_in_run_message(
    ports: Ports,
    chat: Chat,
    event: LifecycleEvent,
    *,
    route: str | None,
    wanted: bool,
    why: str,
    project: str | None,
    verdict: Verdict | None = None,
) -> dict[str, Any]:
    """Bot-token mode: create or update the run's message; reply in its thread if wanted."""
    store = ports.store
    records = read_run(store, event.run_id)
    view, verdict = judged_view(ports, event, records, project=project, verdict=verdict)
    card = render_card(with_actions(ports, chat, view, records))
    existing: RunMessage | None
    if wanted:
        existing = claim_first_post(store, event.run_id)
    else:
        found = read_message(store, event.run_id)
        if found is None or found[0].state != "posted":
            return {"posted": False, "why": why}
        existing = found[0]
    if existing is None:
        posted = post_first_card(ports, chat, event, card, view, records, route=route)
        return {"posted": True, "channel": posted.channel, "ts": posted.ts, "first": True}
    moved = advance(store, event.run_id, RANK[view.status], view.status)
    if moved is not None:
        _update(chat, card, moved)
    if not wanted:
        return {"posted": False, "updated": moved is not None, "why": why}
    reply_view = build_run_view(event, {}, project=project, advance=False)
    if verdict is not None and event.status in FINAL:
        reply_view = with_verdict(reply_view, verdict)
    deliver(
        ports,
        chat,
        event,
        render_update(reply_view),
        route=existing.channel,
        thread_ts=existing.thread,
        broadcast=reply_view.status in BROADCAST,  # an edit alone notifies nobody
    )
    return {"posted": True, "channel": existing.channel, "thread_ts": existing.thread}


def post_promotion(
    ports: Ports, chat: Chat, event: LifecycleEvent, *, route: str | None, project: str | None
) -> dict[str, Any]:
    """A promotion event (always posted: what serves the endpoint changed, or failed to).

    Bot mode: the run's one card gets its model section (posted now if the run had no card yet,
    e.g. `on_success: on_recovery`); its status never changes, and no second message is posted,
    except that a failure is also said in the card's thread and broadcast to the channel (an
    edit alone notifies nobody). Webhooks and the console: one line per event."""
    line_view = replace(
        build_run_view(event, {}, project=project, advance=False), model=from_event(event)
    )
    line = render_update(line_view)
    if not chat.threads:
        posted = deliver(ports, chat, event, line, route=route)
        return {"posted": True, "channel": posted.channel}
    store = ports.store
    records = read_run(store, event.run_id)
    found = read_message(store, event.run_id)
    shown = found[0] if found is not None and found[0].state == "posted" else None
    view = promotion_card_view(store, event, records, shown, project=project)
    card = render_card(with_actions(ports, chat, view, records))
    message = shown or claim_first_post(store, event.run_id)
    if message is None:
        message = post_first_card(ports, chat, event, card, view, records, route=route)
    else:
        # the furthest status the card showed stays; a late progress event cannot move it back
        moved = advance(store, event.run_id, RANK[view.status], view.status)
        if moved is not None:
            _update(chat, card, moved)
    if event.status == "failed":
        deliver(
            ports,
            chat,
            event,
            line,
            route=message.channel,
            thread_ts=message.thread,
            broadcast=True,
        )
    return {"posted": True, "channel": message.channel, "ts": message.ts}


def post_retried(
    ports: Ports, chat: Chat, event: LifecycleEvent, *, route: str | None, project: str | None
) -> dict[str, Any]:
    """`trigger.retried`: bot mode updates the run's card (it lists the attempts made from it)
    and says so in its thread; otherwise (or without a card) one line naming the attempt."""
    line = render_update(build_run_view(event, {}, project=project, advance=False))
    found = read_message(ports.store, event.run_id) if chat.threads else None
    if found is None or found[0].state != "posted":
        posted = deliver(ports, chat, event, line, route=route)
        return {"posted": True, "channel": posted.channel}
    message = found[0]
    records = read_run(ports.store, event.run_id)
    view = retried_card_view(event, records, message, project=project)
    _update(chat, render_card(with_actions(ports, chat, view, records)), message)
    deliver(ports, chat, event, line, route=message.channel, thread_ts=message.thread)
    return {"posted": True, "channel": message.channel, "thread_ts": message.thread}


def update_missed_card(
    ports: Ports,
    chat: Chat,
    run_id: str,
    records: dict[str, StageRecord],
    *,
    project: str | None,
) -> None:
    """The slot's `schedule.missed` card, if one was posted: rendered again now that the slot
    has its run (its Backfill button becomes "backfilled by ...")."""
    found = backfilled_card_view(ports.store, run_id, records, project=project)
    if found is None:
        return
    view, channel, ts = found
    card = render_card(with_actions(ports, chat, view, records))
    _update(chat, card, RunMessage("posted", channel, ts, 0, view.status))
    log.info("missed_card_updated")


def settled_otherwise(ports: Ports, event: LifecycleEvent) -> str | None:
    """The run's recorded final status when this final event says another: a run is settled
    once, by whichever final event comes first (a cancel, then the job's exit handler reporting
    its failure; or the job's success, then a late cancel): the second is a no-op."""
    if event.status not in FINAL or event.pipeline is None:
        return None
    kept = read_summary(ports.store, event.pipeline, event.run_id)
    if kept is None:
        return None
    status = "succeeded" if kept.status == REGRESSION else kept.status
    return None if status == event.status else status


def notify_event(event: LifecycleEvent, ports: Ports) -> bool:
    """Post the event unless policy or an earlier delivery says not to; True when posted now."""
    if event.event_type in QUIET:
        return False
    chat = as_chat(ports.chat(build_chat))
    spec = notify_spec(ports, event.pipeline)
    route = route_for(chat, spec)
    project = ports.settings.project if ports.settings.mode == "google" else None
    original = event

    def work() -> dict[str, Any]:
        event = original
        if event.stage == "promotion":  # the run's model; the run itself is settled
            result = post_promotion(ports, chat, event, route=route, project=project)
            return {"chat": chat.name, "event_type": event.event_type, **result}
        settled = settled_otherwise(ports, event)
        if settled is not None:
            log.info("final_event_after_another", settled=settled)
            why = f"the run had already {settled}: its first final event stands"
            return {"chat": chat.name, "event_type": event.event_type, "posted": False, "why": why}
        records = read_run(ports.store, event.run_id) if event.status in RANK else {}
        view, verdict = judged_view(ports, event, records, project=project, advance=False)
        status = view.status  # a success that missed a gate is announced like a failure
        previous = previous_outcome(ports.store, event, status=status)
        wanted, why = wants_post(event, spec, previous, status=status)
        flapping = failure_alerting(ports.store, event, spec, status)
        if flapping is not None:
            wanted, why = flapping.wanted, flapping.why
            if flapping.recovered_after is not None:
                said = f"recovered after {flapping.recovered_after} failures in a row"
                event = event.model_copy(update={"summary": f"{said}: {event.summary}"})
                view = replace(view, summary=event.summary)
        if event.event_type == "trigger.accepted" and chat.threads:
            update_missed_card(ports, chat, event.run_id, records, project=project)
        if event.status == "retried":
            result = post_retried(ports, chat, event, route=route, project=project)
        elif chat.threads and on_run_card(event):
            result = post_in_run_message(
                ports,
                chat,
                event,
                route=route,
                wanted=wanted,
                why=why,
                project=project,
                verdict=verdict,
            )
        elif not wanted:
            result = {"posted": False, "why": why}
        else:
            if event.status in PROGRESS:
                message = render_update(view)
            else:  # e.g. `schedule.missed`: its card offers Backfill (bot mode)
                message = render_card(with_actions(ports, chat, view, records))
            posted = deliver(ports, chat, event, message, route=route)
            if event.status == "missed" and chat.threads:
                remember_missed_card(ports.store, event, posted)
            result = {"posted": True, "channel": posted.channel}
        return {"chat": chat.name, "event_type": event.event_type, **result}

    outcome = run_once(
        ports.store, notification_key(event), "notify", work, lease=ports.settings.claim_lease
    )
    posted = bool(outcome.result.get("posted")) and not outcome.reused
    log.info(
        "notification_done",
        event_type=event.event_type,
        duplicate=outcome.reused,
        posted=posted,
        why=outcome.result.get("why"),
    )
    return posted


def notify_lifecycle(event: LifecycleEvent, message: PubsubMessage, ports: Ports) -> None:
    notify_event(event, ports)


def _identity_from_body(data: bytes) -> dict[str, str]:
    """run_id/pipeline from the message body when the publisher set no attributes."""
    try:
        body = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {}
    if not isinstance(body, dict):
        return {}
    return {k: body[k] for k in ("run_id", "pipeline") if isinstance(body.get(k), str)}


def _lost_notification(message: PubsubMessage, ports: Ports) -> dict[str, Any]:
    """For a lifecycle event the notifier itself could not deliver: what and why."""
    from mlrelay.contracts import parse_message

    try:
        original = parse_message(LifecycleEvent, message.data)
    except InvalidMessageError:
        return {}
    kept = read_undelivered(ports.store, original.run_id, original.event_type) or {}
    return {
        "undelivered": original.event_type,
        "undelivered_summary": original.summary,
        "reason": kept.get("reason", "unknown"),
    }


def dead_letter_event(message: PubsubMessage, ports: Ports | None = None) -> LifecycleEvent:
    """What a dead-lettered message (with Pub/Sub's dead-letter attributes) tells people."""
    attrs = {**_identity_from_body(message.data), **message.attributes}
    subscription = attrs.get("CloudPubSubDeadLetterSourceSubscription", "unknown subscription")
    attempts = attrs.get("CloudPubSubDeadLetterSourceDeliveryCount", "?")
    summary = (
        f"{attrs.get('event_type', 'message')} on {subscription} failed {attempts} "
        "deliveries and was dead-lettered"
    )
    details: dict[str, Any] = {
        "message_id": message.message_id,
        "subscription": subscription,
        "original": describe_original(message),
    }
    # a lifecycle event dead-lettered on the notifier's own subscription is a lost notification;
    # on another consumer's (mlrelay-promotions) it is that consumer's failure, said as such
    by_notifier = subscription.rsplit("/", 1)[-1] == NOTIFIER_SUBSCRIPTION
    if ports is not None and by_notifier and attrs.get("event_type", "").startswith("lifecycle."):
        lost = _lost_notification(message, ports)
        if lost:
            details.update(lost)
            summary = (
                f"a notification ({lost['undelivered']}: {lost['undelivered_summary']}) could "
                f"not be delivered after {attempts} attempts: {lost['reason']}"
            )
    return LifecycleEvent(
        run_id=attrs.get("run_id") or rejection_id(message.data, message.message_id),
        pipeline=attrs.get("pipeline"),
        stage="delivery",
        status="dead_lettered",
        summary=summary,
        details=details,
    )


def notify_dead_letter(message: PubsubMessage, ports: Ports) -> None:
    """Keep the dead letter (for `mlrelay deadletters list/replay`), then tell people."""
    event = dead_letter_event(message, ports)
    with bind_run(run_id=event.run_id, pipeline=event.pipeline):
        subscription = str(event.details["subscription"])
        topic = source_topic(
            subscription, ports.settings.topics, ports.settings.subscription_topics
        )
        kept = keep_dead_letter(ports.store, message, topic)
        log.error("dead_letter_received", subscription=subscription, store_key=kept.key)
        notify_event(event, ports)
