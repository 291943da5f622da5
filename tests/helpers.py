"""Shared constants and small test doubles: where the repository and its registry are, a chat
channel and a lifecycle capture that record what people would read, a publisher that records
what a stage published, and the embedded runtime built around them."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from mlrelay.config.settings import Settings
from mlrelay.contracts import LifecycleEvent
from mlrelay.stage.envelope import PubsubMessage
from mlrelay.stage.records import StageRecord
from mlrelay_tools.demo import seed_demo_warehouse
from mlrelay_tools.local.runtime import LocalRuntime, build_local_runtime

REPO = Path(__file__).resolve().parents[1]
REGISTRY = REPO / "pipelines" / "registry.yaml"
PENGUINS_TEMPLATE = REPO / "pipelines" / "penguins" / "penguins_pipeline.yaml"
RUNTIME = REPO / "shared" / "mlrelay"  # vendored into every function
# the packages the runtime must never import: the operator tooling and the services
NOT_IN_THE_RUNTIME = (
    "mlrelay_tools",
    "mlrelay_trigger",
    "mlrelay_snapshotter",
    "mlrelay_deployer",
    "mlrelay_notifier",
    "mlrelay_interactions",
)


@dataclass
class RecordingChat:
    name: str = "recording"
    plain_text: bool = True
    posts: list[str] = field(default_factory=list)

    def post(self, text: str, blocks: list[dict[str, Any]] | None = None) -> None:
        self.posts.append(text)


@dataclass
class Capture:
    lifecycle_topic: str
    events: list[LifecycleEvent] = field(default_factory=list)
    messages: list[tuple[str, PubsubMessage]] = field(default_factory=list)

    def __call__(self, topic: str, message: PubsubMessage) -> None:
        self.messages.append((topic, message))
        if topic == self.lifecycle_topic:
            self.events.append(LifecycleEvent.model_validate(json.loads(message.data)))

    def types(self) -> list[str]:
        return [e.event_type for e in self.events]


@dataclass
class RecordingPublisher:
    """What the stage published, by topic (the bus itself is tested against its emulator)."""

    messages: list[tuple[str, bytes, dict[str, str]]] = field(default_factory=list)

    def publish(self, topic: str, data: bytes, attributes: dict[str, str]) -> str:
        self.messages.append((topic, data, attributes))
        return str(len(self.messages))

    def events(self) -> list[LifecycleEvent]:
        return [
            LifecycleEvent.model_validate(json.loads(data))
            for _, data, attrs in self.messages
            if attrs["event_type"].startswith("lifecycle.")
        ]

    def types(self) -> list[str]:
        return [e.event_type for e in self.events()]


def runtime_modules() -> list[str]:
    """Every module of the runtime package, by dotted name."""
    return sorted(
        ".".join(p.relative_to(RUNTIME.parent).with_suffix("").parts).removesuffix(".__init__")
        for p in RUNTIME.rglob("*.py")
    )


def make_runtime(settings: Settings, channel: RecordingChat, **kwargs: Any) -> LocalRuntime:
    seed_demo_warehouse(settings.warehouse_path)
    return build_local_runtime(settings, chat=channel, **kwargs)


def publish_run(runtime: LocalRuntime, payload: dict[str, Any] | bytes) -> str:
    """Publish a run request (a JSON document, or raw bytes) on the local bus's runs topic."""
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return runtime.bus.publish(runtime.settings.topics.runs, data, {"event_type": "run_request"})


def push_body(data: bytes, attributes: dict[str, str] | None = None) -> dict[str, Any]:
    """The JSON a Pub/Sub push subscription POSTs (functions-framework turns it into the
    CloudEvent a 2nd-gen function receives)."""
    return {
        "message": {
            "data": base64.b64encode(data).decode(),
            "attributes": attributes or {},
            "messageId": "9001",
            "publishTime": "2026-11-25T06:00:00.000Z",
        },
        "subscription": "projects/local/subscriptions/mlrelay-trigger",
    }


def function_client(service: str, target: str) -> Any:
    """A test client of `services/<service>/main.py` served as Cloud Functions serves it."""
    from functions_framework import create_app

    source = REPO / "services" / service / "main.py"
    return create_app(target, str(source), "cloudevent").test_client()


# a scheduled penguins run, as the notifier's rendering and the `mlrelay notify` tests see it
SAMPLE_RUN = "penguins-sched-20261130t0500z-1a2b3c4d"
SAMPLE_ACCEPTED = datetime(2026, 11, 30, 5, 0, 3, tzinfo=UTC)


def sample_ledger(*, deploy: dict[str, Any] | None = None) -> dict[str, StageRecord]:
    """The ledger of a scheduled penguins run (the notifier's rendering and CLI tests)."""
    records = {
        "trigger": StageRecord(
            "trigger",
            "done",
            SAMPLE_ACCEPTED.isoformat(),
            result={
                "pipeline": "penguins",
                "parameters": {"min_year": 2007, "n_estimators": 100},
                "logical_time": "2026-11-30T05:00:00+00:00",
                "trigger": "schedule",
                "requested_by": "cloud-scheduler",
                "accepted_at": SAMPLE_ACCEPTED.isoformat(),
            },
        ),
        "snapshot": StageRecord(
            "snapshot",
            "done",
            SAMPLE_ACCEPTED.isoformat(),
            result={
                "manifest_uri": "gs://ml-bucket/snapshots/penguins/x/manifest.json",
                "row_count": 344,
                "total_bytes": 12_345,
                "file_count": 1,
            },
        ),
    }
    if deploy is not None:
        records["pipeline"] = StageRecord(
            "pipeline", "done", SAMPLE_ACCEPTED.isoformat(), result=deploy
        )
    return records


def sample_failed_event(error: str = "ValueError: bad input\n  at train.py:12") -> LifecycleEvent:
    return LifecycleEvent(
        run_id=SAMPLE_RUN,
        pipeline="penguins",
        stage="pipeline",
        status="failed",
        occurred_at=SAMPLE_ACCEPTED + timedelta(minutes=3, seconds=20),
        summary="pipeline failed at train-model",
        error=error,
        trigger="schedule",
        parameters={"min_year": 2007, "n_estimators": 100},
        links={"vertex": "https://console.cloud.google.com/vertex-ai/pipelines/runs/r1"},
        details={"failed_task": "train-model"},
    )


# what Vertex AI says of a failed pipeline, and the exit handler's view of it
VERTEX_FAILURE = (
    "The DAG failed because some tasks failed. The failed tasks are: [train].; Job (project_id = "
    "p, job_id = 123) is failed due to the above error."
)


def final_status(state: str, message: str | None = None) -> Any:
    """A KFP exit handler's `PipelineTaskFinalStatus` for the completion reporter's tests."""
    from kfp.dsl import PipelineTaskFinalStatus  # kfp only for the tests that use it

    return PipelineTaskFinalStatus(
        state=state,
        pipeline_job_resource_name="projects/p/locations/europe-west4/pipelineJobs/run-1",
        pipeline_task_name="exit-handler-1",
        error_code=None if message is None else 9,
        error_message=message,
    )


# --- Slack's signed requests (the interactions function) --------------------------------------
SLACK_USER = "U123ABC"


def slack_signature(secret: str, body: bytes, timestamp: int) -> str:
    """Slack's v0 signature: HMAC-SHA256 over `v0:<timestamp>:<body>` with the signing secret."""
    import hashlib
    import hmac

    base = f"v0:{timestamp}:".encode() + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def signed_headers(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    import time

    when = int(time.time()) if timestamp is None else timestamp
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": str(when),
        "X-Slack-Signature": slack_signature(secret, body, when),
    }


def button_body(
    run_id: str,
    action: str = "retry",
    user: str = SLACK_USER,
    response_url: str = "",
) -> bytes:
    """A `block_actions` post, as Slack sends a click on a run card's button."""
    from urllib.parse import urlencode

    payload = {
        "type": "block_actions",
        "user": {"id": user, "username": "ana", "team_id": "T0000"},
        "team": {"id": "T0000"},
        "container": {"type": "message", "message_ts": "1764560000.000100"},
        "response_url": response_url,
        "actions": [
            {
                "type": "button",
                "action_id": f"mlrelay_{action}",
                "block_id": "run-actions",
                "value": run_id,
                "action_ts": "1764560001.000200",
            }
        ],
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


def slash_body(text: str, user: str = SLACK_USER, response_url: str = "") -> bytes:
    from urllib.parse import urlencode

    return urlencode(
        {
            "command": "/mlrelay",
            "text": text,
            "user_id": user,
            "team_id": "T0000",
            "response_url": response_url,
        }
    ).encode()


def http_function_client(service: str, target: str) -> Any:
    """A test client of an HTTP function of `services/<service>/main.py`."""
    from functions_framework import create_app

    source = REPO / "services" / service / "main.py"
    return create_app(target, str(source), "http").test_client()


def seed_run(store: Any, run_id: str, pipeline: str = "penguins", failed: bool = True) -> None:
    """A run in the ledger: accepted by the trigger, its pipeline failed (or still running)."""
    trigger = StageRecord(
        "trigger", "done", SAMPLE_ACCEPTED.isoformat(), result={"pipeline": pipeline}
    )
    store.write(keys_ledger(run_id, "trigger"), trigger.to_json())
    state = "failed" if failed else "running"
    record = StageRecord("pipeline", state, SAMPLE_ACCEPTED.isoformat(), error="OOM")
    store.write(keys_ledger(run_id, "pipeline"), record.to_json())


def keys_ledger(run_id: str, stage: Any) -> str:
    from mlrelay.stage import keys

    return keys.ledger(run_id, stage)
