"""Hypothesis against the real functions-framework app: whatever the headers and body, the door
never answers 500 and never publishes. Unsigned requests are 401; signed garbage is answered
(400, or an ephemeral message), never a crash."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlrelay.ports.container import use_ports
from tests.helpers import SLACK_USER, seed_run, signed_headers
from tests.unit.interactions.conftest import RUN
from tests.unit.interactions.door_kit import Door, open_door

header_text = st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=80)
HEADERS = st.fixed_dictionaries(
    {},
    optional={
        "X-Slack-Signature": header_text
        | st.from_regex(r"\Av0=[0-9a-f]{64}\Z")
        | st.from_regex(r"\Av0=[0-9A-F]{64}\Z"),
        "X-Slack-Request-Timestamp": header_text
        | st.integers(-(10**15), 10**15).map(str)
        | st.just(str(int(time.time()))),
        "X-Slack-Retry-Num": header_text,
        "X-Slack-Retry-Reason": header_text,
        "Content-Type": st.sampled_from(
            ["application/x-www-form-urlencoded", "application/json", "text/plain", ""]
        ),
    },
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
actions = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "action_id": st.sampled_from(
                ["mlrelay_retry", "mlrelay_cancel", "mlrelay_approve", "mlrelay_launch", "x"]
            )
            | st.text(max_size=20),
            "value": st.from_regex(r"\A[a-z][a-z0-9-]{2,40}\Z") | json_values,
            "type": st.just("button"),
        },
    )
    | json_values,
    max_size=3,
)
payloads = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["block_actions", "view_submission", "shortcut"]) | json_values,
        "user": st.fixed_dictionaries({}, optional={"id": st.sampled_from([SLACK_USER, "U9"])})
        | json_values,
        "actions": actions | json_values,
        "response_url": st.text(max_size=40) | json_values,
    },
)
forms = st.dictionaries(
    st.sampled_from(["payload", "command", "text", "user_id", "response_url", "ssl_check"])
    | st.text(max_size=10),
    st.text(max_size=60),
    max_size=5,
)
BODIES = st.one_of(
    st.binary(max_size=600),
    payloads.map(lambda p: urlencode({"payload": json.dumps(p)}).encode()),
    json_values.map(lambda v: urlencode({"payload": json.dumps(v)}).encode()),
    st.text(max_size=200).map(lambda t: urlencode({"payload": t}).encode()),
    forms.map(lambda f: urlencode(f).encode()),
    st.text(max_size=80).map(
        lambda t: urlencode({"command": "/mlrelay", "text": t, "user_id": SLACK_USER}).encode()
    ),
)


@pytest.fixture(scope="module")
def fuzz_door(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Door]:
    home: Path = tmp_path_factory.mktemp("fuzz") / "home"
    opened = open_door(home)
    seed_run(opened.runtime.store, RUN)
    yield opened
    use_ports(None)


def _post(door: Door, body: bytes, headers: dict[str, str]) -> Any:
    use_ports(door.runtime.ports)
    return door.post(body, headers)


@given(body=BODIES, headers=HEADERS)
def test_unsigned_requests_are_401_and_publish_nothing(
    fuzz_door: Door, body: bytes, headers: dict[str, str]
) -> None:
    response = _post(fuzz_door, body, headers)
    assert response.status_code == 401
    assert fuzz_door.published() == 0


@given(body=BODIES, retry=st.none() | header_text)
def test_signed_garbage_is_never_500_and_publishes_nothing(
    fuzz_door: Door, body: bytes, retry: str | None
) -> None:
    headers = signed_headers(fuzz_door.secret, body)
    if retry is not None:
        headers["X-Slack-Retry-Num"] = retry
    response = _post(fuzz_door, body, headers)
    assert response.status_code in (200, 400) or (
        response.status_code == 401 and not _utf8(body)  # the verifier signs text only
    ), response.get_data()
    assert fuzz_door.published() == 0


def _utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
