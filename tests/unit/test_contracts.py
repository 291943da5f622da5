from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlrelay.contracts import (
    DeployRequest,
    LifecycleEvent,
    RunRequest,
    SnapshotRef,
    SnapshotRequest,
    parse_message,
)
from mlrelay.errors import InvalidMessageError

NOW = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)


def test_run_request_round_trips_through_json() -> None:
    request = RunRequest(
        pipeline="penguins",
        parameters={"n_estimators": 5},
        dedup_key="k1",
        logical_time=NOW,
        trigger="schedule",
    )
    assert parse_message(RunRequest, request.to_json()) == request
    assert request.attributes() == {
        "event_type": "run_request",
        "schema_version": "1",
        "pipeline": "penguins",
    }


def test_deploy_request_carries_snapshot_and_attributes() -> None:
    ref = SnapshotRef(
        manifest_uri="file:///m.json",
        fingerprint="a" * 64,
        row_count=3,
        total_bytes=10,
        file_count=1,
    )
    request = DeployRequest(
        run_id="penguins-x-0123",
        pipeline="penguins",
        parameters={},
        logical_time=NOW,
        trigger="manual",
        accepted_at=NOW,
        snapshot=ref,
    )
    again = parse_message(DeployRequest, request.to_json())
    assert again.snapshot == ref
    assert request.attributes()["run_id"] == "penguins-x-0123"


def test_lifecycle_event_type_attribute() -> None:
    event = LifecycleEvent(run_id="r-1", stage="snapshot", status="completed")
    assert event.attributes()["event_type"] == "lifecycle.snapshot.completed"
    assert event.event_type == "snapshot.completed"


@pytest.mark.parametrize(
    ("payload", "field", "words"),
    [
        (b"{not json", "data", "not valid JSON"),
        (b"[1, 2]", "data", "expected a JSON object"),
        (b'{"parameters": {}}', "pipeline", "required"),
        (b'{"pipeline": "Penguins!"}', "pipeline", "pattern"),
        (b'{"pipeline": "penguins", "paramters": {}}', "paramters", "unknown field"),
        (
            b'{"pipeline": "penguins", "logical_time": "2026-01-01T00:00:00"}',
            "logical_time",
            "time zone",
        ),
        (b'{"pipeline": "penguins", "schema_version": 7}', "schema_version", "not understood"),
        (b'{"pipeline": "penguins", "trigger": "cron"}', "trigger", "allowed values"),
    ],
)
def test_invalid_input_names_the_field(payload: bytes, field: str, words: str) -> None:
    with pytest.raises(InvalidMessageError) as caught:
        parse_message(RunRequest, payload)
    assert caught.value.field == field
    assert words in str(caught.value)
    assert str(caught.value).startswith(f"{field}:")


def test_several_problems_are_all_reported() -> None:
    with pytest.raises(InvalidMessageError) as caught:
        parse_message(SnapshotRequest, b'{"pipeline": "x"}')
    text = str(caught.value)
    for missing in ("run_id", "parameters", "logical_time", "trigger", "accepted_at"):
        assert missing in text


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=10,
)


@given(st.binary(max_size=200))
def test_arbitrary_bytes_only_ever_raise_invalid_message(data: bytes) -> None:
    for model in (RunRequest, SnapshotRequest, DeployRequest, LifecycleEvent):
        try:
            parse_message(model, data)
        except InvalidMessageError as exc:
            assert exc.field


@given(
    st.dictionaries(
        st.sampled_from(
            [
                "pipeline",
                "parameters",
                "dedup_key",
                "logical_time",
                "trigger",
                "schema_version",
                "extra",
            ]
        ),
        json_values,
        max_size=6,
    )
)
def test_arbitrary_json_objects_only_ever_raise_invalid_message(data: dict[str, object]) -> None:
    try:
        parse_message(RunRequest, json.dumps(data))
    except InvalidMessageError as exc:
        assert exc.field


def test_run_command_round_trips_and_routes_by_action() -> None:
    from mlrelay.config.settings import Settings
    from mlrelay.contracts import RunCommand
    from mlrelay.ports.container import topic_for

    command = RunCommand(
        action="cancel",
        run_id="penguins-a-1",
        pipeline="penguins",
        requested_by="slack:U123ABC",
        requested_at=datetime(2026, 12, 1, 12, 0, tzinfo=UTC),
        source="slack",
        action_key="penguins-a-1/cancel/0123456789abcdef",
        response_url="https://hooks.slack.com/actions/T/1/x",
    )
    assert parse_message(RunCommand, command.to_json()) == command
    assert command.attributes() == {
        "event_type": "run_command",
        "schema_version": "1",
        "run_id": "penguins-a-1",
        "pipeline": "penguins",
        "action": "cancel",
    }
    assert topic_for(Settings(), command) == "mlrelay-commands"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"action": "deploy"}, "action"),
        ({"source": "email"}, "source"),
        ({"action_key": "penguins-a-1/cancel"}, "action_key"),
        ({"requested_at": "2026-12-01T12:00:00"}, "requested_at"),
    ],
)
def test_a_bad_run_command_names_the_field(change: dict[str, str], field: str) -> None:
    from mlrelay.contracts import RunCommand

    raw = {
        "action": "retry",
        "run_id": "penguins-a-1",
        "pipeline": "penguins",
        "requested_by": "slack:U123ABC",
        "requested_at": "2026-12-01T12:00:00Z",
        "source": "slack",
        "action_key": "penguins-a-1/retry/0123456789abcdef",
        **change,
    }
    with pytest.raises(InvalidMessageError) as caught:
        parse_message(RunCommand, json.dumps(raw))
    assert caught.value.field == field
