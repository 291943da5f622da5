"""Bad input, generated (hypothesis): through every function's real entry point, any message a
parser refuses becomes exactly one `rejected` lifecycle event with a reason, and the original is
kept in the bucket; nothing else escapes. The envelope parser and the registry loader only ever
raise their own error types, naming a field (and, for the registry, a line)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cloudevents.http import CloudEvent
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mlrelay.adapters.local_folder import LocalFolderStore
from mlrelay.config.settings import Settings
from mlrelay.contracts import (
    DeployRequest,
    LifecycleEvent,
    Message,
    RunRequest,
    SnapshotRequest,
    parse_message,
)
from mlrelay.errors import InvalidMessageError, MlrelayError
from mlrelay.ports.container import Ports, use_ports
from mlrelay.registry import RegistryError, load_registry, parse_registry
from mlrelay.stage.envelope import PubsubMessage, from_cloudevent, to_cloudevent
from tests.helpers import REGISTRY, RecordingPublisher

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)

VALID: dict[type[Message], dict[str, Any]] = {
    RunRequest: {"pipeline": "penguins", "dedup_key": "k", "parameters": {"seed": 1}},
    SnapshotRequest: {
        "run_id": "penguins-x-1", "pipeline": "penguins", "parameters": {},
        "logical_time": "2026-01-01T06:00:00Z", "trigger": "manual",
        "accepted_at": "2026-01-01T06:00:01Z",
    },
    DeployRequest: {
        "run_id": "penguins-x-1", "pipeline": "penguins", "parameters": {},
        "logical_time": "2026-01-01T06:00:00Z", "trigger": "manual",
        "accepted_at": "2026-01-01T06:00:01Z",
        "snapshot": {"manifest_uri": "gs://b/m.json", "fingerprint": "a" * 64, "row_count": 1,
                     "total_bytes": 1, "file_count": 1},
    },
    LifecycleEvent: {"run_id": "penguins-x-1", "stage": "pipeline", "status": "succeeded"},
}  # fmt: skip


def entry_points() -> dict[type[Message], tuple[str, Callable[[CloudEvent], None]]]:
    from mlrelay_deployer.entry import on_deploy_request
    from mlrelay_notifier.entry import on_lifecycle_event
    from mlrelay_snapshotter.entry import on_snapshot_request
    from mlrelay_trigger.entry import on_run_request

    return {
        RunRequest: ("trigger", on_run_request),
        SnapshotRequest: ("snapshot", on_snapshot_request),
        DeployRequest: ("pipeline", on_deploy_request),
        LifecycleEvent: ("notify", on_lifecycle_event),
    }


@pytest.fixture(scope="module")
def ports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Ports, RecordingPublisher]]:
    home = tmp_path_factory.mktemp("fuzz")
    publisher = RecordingPublisher()
    settings = Settings(home=home, registry_path=REGISTRY)
    built = Ports(
        settings,
        publisher=publisher,
        store=LocalFolderStore(home / "bucket"),
        registry=load_registry(REGISTRY),
    )
    use_ports(built)
    yield built, publisher
    use_ports(None)


_ids = iter(range(10**9))


def deliver_refused(
    ports: tuple[Ports, RecordingPublisher], model: type[Message], data: bytes
) -> None:
    """`data` is refused by the model's parser: the entry point must reject it, once, kept."""
    built, publisher = ports
    stage, entry = entry_points()[model]
    message = PubsubMessage(data, {"event_type": "fuzz"}, message_id=f"fuzz-{next(_ids)}")
    before = len(publisher.messages)
    kept_before = len(built.store.list("rejected/"))
    entry(to_cloudevent(message, "projects/local/topics/fuzz"))
    new = publisher.messages[before:]
    events = [LifecycleEvent.model_validate_json(d) for _, d, _ in new]
    assert [(e.stage, e.status) for e in events] == [(stage, "rejected")]
    assert events[0].error and events[0].details["field"]
    assert len(built.store.list("rejected/")) == kept_before + 1


def refused(model: type[Message], data: bytes) -> bool:
    try:
        parse_message(model, data)
    except InvalidMessageError:
        return True
    return False


MODELS = [RunRequest, SnapshotRequest, DeployRequest, LifecycleEvent]
fuzz = settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.kind)
@fuzz
@given(data=st.binary(max_size=120))
def test_arbitrary_bytes_are_rejected_once_with_a_reason(
    ports: tuple[Ports, RecordingPublisher], model: type[Message], data: bytes
) -> None:
    assume(refused(model, data))
    deliver_refused(ports, model, data)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.kind)
@fuzz
@given(field=st.text(max_size=12), which=st.integers(0, 20), value=json_values, drop=st.booleans())
def test_a_valid_message_with_one_field_broken_is_rejected_once_with_a_reason(
    ports: tuple[Ports, RecordingPublisher],
    model: type[Message],
    field: str,
    which: int,
    value: Any,
    drop: bool,
) -> None:
    body = dict(VALID[model])
    known = sorted(body)
    name = known[which % len(known)] if which < 10 else field
    if drop:
        body.pop(name, None)
    else:
        body[name] = value
    data = json.dumps(body).encode()
    assume(refused(model, data))
    deliver_refused(ports, model, data)


@fuzz
@given(envelope=json_values, extra=st.dictionaries(st.text(max_size=8), json_values, max_size=3))
def test_any_cloudevent_body_is_a_rejection_never_a_crash(
    ports: tuple[Ports, RecordingPublisher], envelope: Any, extra: dict[str, Any]
) -> None:
    body = {"message": envelope, **extra} if isinstance(envelope, dict) else envelope
    event = CloudEvent(
        {"id": "x", "source": "//pubsub", "type": "google.cloud.pubsub.topic.v1.messagePublished"},
        body,
    )
    try:
        from_cloudevent(event)
    except InvalidMessageError as exc:
        assert exc.field
        publisher = ports[1]
        before = len(publisher.messages)
        entry_points()[RunRequest][1](event)
        [(_, data, _)] = publisher.messages[before:]
        assert LifecycleEvent.model_validate_json(data).status == "rejected"


@fuzz
@given(data=st.binary(max_size=200), attributes=st.dictionaries(st.text(max_size=40),
       st.text(max_size=40), max_size=4))  # fmt: skip
def test_the_dead_letter_function_takes_any_message_without_raising(
    ports: tuple[Ports, RecordingPublisher], data: bytes, attributes: dict[str, str]
) -> None:
    from mlrelay_notifier.entry import on_dead_letter

    publisher = ports[1]
    before = len(publisher.messages)
    message = PubsubMessage(data, attributes, message_id=f"dl-{next(_ids)}")
    on_dead_letter(to_cloudevent(message, "projects/local/topics/mlrelay-dead-letter"))
    assert publisher.messages[before:] == [] or all(
        a["event_type"] == "lifecycle.delivery.dead_lettered"
        for _, _, a in publisher.messages[before:]
    )


# --- the registry loader ---------------------------------------------------------------------

SHIPPED = yaml.safe_load(Path(REGISTRY).read_text())


@fuzz
@given(text=st.text(max_size=300))
def test_any_registry_text_loads_or_names_line_and_field(text: str) -> None:
    try:
        parse_registry(text, "fuzz.yaml", Path(REGISTRY).parent)
    except RegistryError as exc:
        assert exc.problems and all(p.field and p.line >= 0 for p in exc.problems)


def _paths(node: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [at]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*at, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _paths(value, (*at, i))
    return found


PATHS = [p for p in _paths(SHIPPED) if p]


@fuzz
@given(path=st.sampled_from(PATHS), value=json_values)
def test_the_shipped_registry_with_one_value_broken_loads_or_names_the_field(
    path: tuple[Any, ...], value: Any
) -> None:
    doc = json.loads(json.dumps(SHIPPED))
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    try:
        parse_registry(yaml.safe_dump(doc), "fuzz.yaml", Path(REGISTRY).parent)
    except RegistryError as exc:
        assert exc.problems and all(p.field and p.line >= 0 for p in exc.problems)
    except MlrelayError as exc:  # pragma: no cover - a different error kind would fail here
        pytest.fail(f"registry raised {type(exc).__name__} instead of RegistryError: {exc}")


def test_base64_round_trip_of_the_fuzz_helper() -> None:
    message = PubsubMessage(b"\xff\x00", {}, message_id="m")
    body = to_cloudevent(message, "projects/p/topics/t").data
    assert base64.b64decode(body["message"]["data"]) == b"\xff\x00"
