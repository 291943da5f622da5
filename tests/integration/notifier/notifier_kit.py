"""Helpers for the notifier tests: Slack channels pointed at the loopback fake, a registry with a
chosen `notify:` policy, and a run driven stage by stage (ledger record, then its event)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from mlrelay.contracts import LifecycleEvent, utc_now
from mlrelay.registry import NotifySpec, Registry, load_registry
from mlrelay.stage import keys
from mlrelay.stage.ledger import StageRecord
from mlrelay_notifier.chat import ChatRetries
from mlrelay_notifier.slack_clients import SlackBotChat, SlackWebhookChat
from mlrelay_tools.local.runtime import LocalRuntime
from tests.fakes.slack import FakeSlack
from tests.helpers import REGISTRY

# fast enough for a test suite; the pacing is checked against this interval
FAST = ChatRetries(min_interval=0.05, backoff_factor=0.01, max_retry_after=5.0, timeout=5)


def registry_with(**notify: Any) -> Registry:
    registry = load_registry(REGISTRY)
    spec = registry.pipelines["penguins"]
    # these tests are about the run's card: without the demo's `promotion:`, no model is
    # deployed and no promotion event joins the run's (the promotion card has tests of its own)
    spec = spec.model_copy(update={"notify": NotifySpec(**notify), "promotion": None})
    return registry.model_copy(update={"pipelines": {"penguins": spec}})


def bot_channel(slack: FakeSlack, delivery: ChatRetries = FAST) -> SlackBotChat:
    slack.add_channel("#ml-training")
    slack.add_channel("#mlops")
    return SlackBotChat(
        slack.token, default_channel="#mlops", api_url=slack.api_url, retries=delivery
    )


def webhook_channel(slack: FakeSlack, delivery: ChatRetries = FAST) -> SlackWebhookChat:
    return SlackWebhookChat({None: slack.add_webhook("default")}, delivery)


def run_stages(
    runtime: LocalRuntime,
    run_id: str,
    *,
    outcome: str = "succeeded",
    until: str = "",
    accuracy: float = 0.97,
) -> list[LifecycleEvent]:
    """Drive one run through the notifier as the stages would: each stage writes its ledger
    record, publishes its event, and the bus delivers it before the next stage."""
    began = utc_now()
    trigger = {
        "run_id": run_id,
        "pipeline": "penguins",
        "parameters": {"min_year": 2007, "n_estimators": 20},
        "logical_time": began.isoformat(),
        "trigger": "manual",
        "requested_by": "alice",
        "accepted_at": began.isoformat(),
    }
    snapshot = {
        "manifest_uri": f"file:///b/snapshots/penguins/{run_id}/manifest.json",
        "row_count": 344,
        "total_bytes": 9000,
        "file_count": 1,
    }
    deploy: dict[str, Any] = {
        "status": outcome,
        "metrics": {"accuracy": accuracy} if outcome == "succeeded" else {},
        "failed_task": "train-model" if outcome == "failed" else None,
        "error": "MemoryError: train-model ran out of memory" if outcome == "failed" else None,
        "links": {"run": "https://kfp.example.com/#/runs/details/r-1"},
    }
    base = {"run_id": run_id, "pipeline": "penguins", "trigger": "manual"}
    steps: list[tuple[str, dict[str, Any] | None, LifecycleEvent]] = [
        (
            "trigger",
            trigger,
            LifecycleEvent(
                **base, stage="trigger", status="accepted", summary="run accepted (manual)"
            ),
        ),
        (
            "snapshot",
            snapshot,
            LifecycleEvent(
                **base,
                stage="snapshot",
                status="completed",
                summary="snapshot of 344 rows in 1 file(s)",
                figures={"rows": 344, "bytes": 9000, "files": 1},
            ),
        ),
        (
            "pipeline",
            None,
            LifecycleEvent(
                **base, stage="pipeline", status="submitted", summary="pipeline submitted"
            ),
        ),
        (
            "pipeline",
            deploy,
            LifecycleEvent(
                **base,
                stage="pipeline",
                status="succeeded" if outcome == "succeeded" else "failed",
                occurred_at=began + timedelta(seconds=42),
                summary=f"pipeline {outcome}",
                error=deploy["error"],
                figures=deploy["metrics"],
                links=deploy["links"],
                details={"failed_task": deploy["failed_task"]},
            ),
        ),
    ]
    events = []
    for stage, result, event in steps:
        state = "done" if result is not None else "running"
        record = StageRecord(stage, state, began.isoformat(), result=result)  # type: ignore[arg-type]
        runtime.store.write(keys.ledger(run_id, stage), record.to_json())
        runtime.ports.publish(event)
        runtime.bus.run_until_idle()
        events.append(event)
        if event.event_type == until:
            break
    return events
