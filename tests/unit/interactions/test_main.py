"""services/interactions/main.py served by functions-framework as Cloud Functions serves it: a
signed, authorised Slack click becomes exactly one command on the commands topic; anything
unsigned is 401, and nothing else is ever published."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from mlrelay.config.functions import FUNCTIONS
from mlrelay.contracts import COMMAND_ACTIONS
from mlrelay.ports.container import use_ports
from mlrelay.stage.commands import CARRIED_OUT
from tests.helpers import SLACK_USER, button_body, seed_run, signed_headers, slash_body
from tests.unit.interactions.conftest import RUN
from tests.unit.interactions.door_kit import Door, open_door


def test_a_signed_click_answers_within_3_s_and_publishes_one_command(door: Door) -> None:
    body = button_body(RUN, "retry")
    started = time.monotonic()
    response = door.post(body, signed_headers(door.secret, body))
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert elapsed < 3
    answer = response.get_json()
    assert answer["response_type"] == "ephemeral"
    assert f"requested by <@{SLACK_USER}>" in answer["text"]
    (command,) = door.commands()
    assert door.published() == 1
    assert (command.action, command.run_id, command.pipeline) == ("retry", RUN, "penguins")
    assert (command.requested_by, command.source) == (f"slack:{SLACK_USER}", "slack")
    assert command.action_key.startswith(f"{RUN}/retry/")
    topic, message = door.capture.messages[0]
    assert topic == "mlrelay-commands"
    assert message.attributes["action"] == "retry"
    assert message.attributes["event_type"] == "run_command"


def test_the_same_click_again_is_already_requested_and_publishes_nothing(door: Door) -> None:
    body = button_body(RUN, "retry")
    door.post(body, signed_headers(door.secret, body))
    again = door.post(body, {**signed_headers(door.secret, body), "X-Slack-Retry-Num": "1"})
    assert again.status_code == 200
    assert "already requested by" in again.get_json()["text"]
    assert door.published() == 1


def test_another_action_on_the_same_run_is_its_own_command(door: Door) -> None:
    for action in ("retry", "rerun"):
        body = button_body(RUN, action)
        assert door.post(body, signed_headers(door.secret, body)).status_code == 200
    assert [c.action for c in door.commands()] == ["retry", "rerun"]


def test_once_the_run_moves_on_the_same_button_asks_afresh(door: Door) -> None:
    body = button_body(RUN, "retry")
    door.post(body, signed_headers(door.secret, body))
    seed_run(door.runtime.store, RUN, failed=False)  # a new attempt is running
    door.post(body, signed_headers(door.secret, body))
    keys = [c.action_key for c in door.commands()]
    assert len(keys) == 2 and keys[0] != keys[1]


def test_ten_concurrent_clicks_plus_slack_retries_publish_one_command(door: Door) -> None:
    body = button_body(RUN, "retry")

    def click(attempt: int) -> int:
        headers = signed_headers(door.secret, body)
        if attempt >= 10:
            headers["X-Slack-Retry-Num"] = str(attempt - 9)
            headers["X-Slack-Retry-Reason"] = "http_timeout"
        return int(door.post(body, headers).status_code)

    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = list(pool.map(click, range(13)))
    assert statuses == [200] * 13
    assert len(door.commands()) == 1
    assert door.published() == 1


def _tampered(door: Door) -> tuple[bytes, dict[str, str]]:
    body = button_body(RUN, "retry")
    headers = signed_headers(door.secret, body)
    return body.replace(b"retry", b"cancel"), headers


def _wrong_secret(door: Door) -> tuple[bytes, dict[str, str]]:
    body = button_body(RUN, "retry")
    return body, signed_headers("0" * 32, body)


def _no_signature(door: Door) -> tuple[bytes, dict[str, str]]:
    body = button_body(RUN, "retry")
    headers = signed_headers(door.secret, body)
    del headers["X-Slack-Signature"]
    return body, headers


def _no_timestamp(door: Door) -> tuple[bytes, dict[str, str]]:
    body = button_body(RUN, "retry")
    headers = signed_headers(door.secret, body)
    del headers["X-Slack-Request-Timestamp"]
    return body, headers


def _stale(door: Door) -> tuple[bytes, dict[str, str]]:
    body = button_body(RUN, "retry")
    return body, signed_headers(door.secret, body, int(time.time()) - 301)


def _future(door: Door) -> tuple[bytes, dict[str, str]]:
    body = button_body(RUN, "retry")
    return body, signed_headers(door.secret, body, int(time.time()) + 301)


@pytest.mark.parametrize(
    "request_of",
    [_tampered, _wrong_secret, _no_signature, _no_timestamp, _stale, _future],
    ids=lambda f: f.__name__.strip("_"),
)
def test_an_unsigned_request_is_401_and_publishes_nothing(door: Door, request_of: object) -> None:
    body, headers = request_of(door)  # type: ignore[operator]
    response = door.post(body, headers)
    assert response.status_code == 401
    assert door.published() == 0


def test_within_the_window_a_slightly_old_request_is_fine(door: Door) -> None:
    body = button_body(RUN, "retry")
    response = door.post(body, signed_headers(door.secret, body, int(time.time()) - 240))
    assert response.status_code == 200
    assert len(door.commands()) == 1


def test_without_a_signing_secret_the_door_fails_closed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    door = open_door(tmp_path / "home", secret="")
    try:
        seed_run(door.runtime.store, RUN)
        body = button_body(RUN, "retry")
        # even a request signed with an empty key is refused
        response = door.post(body, signed_headers("", body))
        assert response.status_code == 503
        assert door.published() == 0
        logged = capsys.readouterr()
        assert "SLACK_SIGNING_SECRET" in logged.out + logged.err
    finally:
        use_ports(None)


def test_an_unauthorised_user_gets_an_ephemeral_denial_and_nothing_is_published(
    door: Door,
) -> None:
    body = button_body(RUN, "retry", user="U999NOPE")
    response = door.post(body, signed_headers(door.secret, body))
    assert response.status_code == 200
    answer = response.get_json()
    assert answer["response_type"] == "ephemeral"
    assert "may not act on `penguins`" in answer["text"]
    assert door.published() == 0


def test_an_empty_allowlist_allows_nobody(tmp_path: Path) -> None:
    door = open_door(tmp_path / "home", users=[])
    try:
        seed_run(door.runtime.store, RUN)
        body = button_body(RUN, "retry")
        response = door.post(body, signed_headers(door.secret, body))
        assert "may not act" in response.get_json()["text"]
        assert door.published() == 0
    finally:
        use_ports(None)


def test_a_click_on_an_unknown_run_publishes_nothing(door: Door) -> None:
    body = button_body("penguins-never-ran", "retry")
    response = door.post(body, signed_headers(door.secret, body))
    assert response.status_code == 200
    assert "not a run mlrelay knows" in response.get_json()["text"]
    assert door.published() == 0


def test_a_body_over_the_limit_is_413_and_not_read(door: Door) -> None:
    body = b"payload=" + b"x" * 70_000
    response = door.post(body, signed_headers(door.secret, body))
    assert response.status_code == 413
    assert door.published() == 0


def test_slash_retry_takes_the_button_path(door: Door) -> None:
    body = slash_body(f"retry {RUN}")
    response = door.post(body, signed_headers(door.secret, body))
    assert response.status_code == 200
    assert "requested by" in response.get_json()["text"]
    button = button_body(RUN, "retry")
    again = door.post(button, signed_headers(door.secret, button))
    assert "already requested" in again.get_json()["text"]
    assert len(door.commands()) == 1


def test_slash_status_and_runs_answer_from_the_history(door: Door) -> None:
    from mlrelay.history import RunSummary, write_summary
    from tests.helpers import SAMPLE_ACCEPTED

    write_summary(
        door.runtime.store,
        RunSummary(
            run_id=RUN,
            pipeline="penguins",
            status="failed",
            logical_time=SAMPLE_ACCEPTED,
            rows=344,
            error="OOM",
        ),
    )
    for text, expected in (
        ("status penguins", f"latest run: `{RUN}` · failed"),
        ("runs penguins", "last 1 runs"),
    ):
        body = slash_body(text)
        answer = door.post(body, signed_headers(door.secret, body)).get_json()
        assert answer["response_type"] == "ephemeral"
        assert expected in answer["text"], answer
        assert "344 rows" in answer["text"]
    assert door.published() == 0


@pytest.mark.parametrize(
    "text", ["", "help", "status", "retry", "status penguins extra", "launch penguins"]
)
def test_slash_usage_for_anything_else(door: Door, text: str) -> None:
    body = slash_body(text)
    answer = door.post(body, signed_headers(door.secret, body)).get_json()
    assert answer["response_type"] == "ephemeral"
    assert "Usage: `/mlrelay status PIPELINE`" in answer["text"]
    assert door.published() == 0


def test_slash_status_of_an_unknown_pipeline_or_by_an_unlisted_user(door: Door) -> None:
    body = slash_body("status nosuch")
    assert "not a pipeline" in door.post(body, signed_headers(door.secret, body)).get_json()["text"]
    body = slash_body("status penguins", user="U999NOPE")
    assert "may not act" in door.post(body, signed_headers(door.secret, body)).get_json()["text"]


def test_a_click_that_is_not_an_mlrelay_button_is_acknowledged_and_ignored(door: Door) -> None:
    payload = {"type": "block_actions", "user": {"id": SLACK_USER}, "actions": [
        {"action_id": "open_console", "type": "button", "url": "https://example.com"}
    ]}  # fmt: skip
    from urllib.parse import urlencode

    body = urlencode({"payload": json.dumps(payload)}).encode()
    assert door.post(body, signed_headers(door.secret, body)).status_code == 200
    assert door.published() == 0


def test_get_is_refused(door: Door) -> None:
    assert door.client.get("/").status_code == 405


def test_the_response_url_is_never_logged(door: Door, capsys: pytest.CaptureFixture[str]) -> None:
    url = "https://hooks.slack.com/actions/T0000/1/" + "q" * 24
    body = button_body(RUN, "retry", response_url=url)
    door.post(body, signed_headers(door.secret, body))
    (command,) = door.commands()
    assert command.response_url == url  # the consumer answers the clicker there
    assert "q" * 24 not in capsys.readouterr().out


@pytest.mark.parametrize("action", ["approve", "reject"])
def test_approve_and_reject_are_published_for_the_approvals_function(
    door: Door, action: str
) -> None:
    # the deployer's mlrelay-approvals function reads them (the approval gate)
    body = button_body(RUN, action)
    response = door.post(body, signed_headers(door.secret, body))
    assert response.status_code == 200
    assert response.get_json()["response_type"] == "ephemeral"
    (command,) = door.commands()
    assert command.action == action
    _topic, message = door.capture.messages[0]
    assert message.attributes["action"] == action


def test_every_command_action_the_door_publishes_has_a_function_that_carries_it_out() -> None:
    # a command nobody reads would be lost: the door publishes only CARRIED_OUT actions, and each
    # of those is let through by the filter of a function on the commands topic
    read = {
        value
        for spec in FUNCTIONS
        if spec.topic == "commands" and spec.only is not None
        for value in spec.only.values
    }
    assert set(CARRIED_OUT) <= read
    assert set(COMMAND_ACTIONS) == set(CARRIED_OUT)
