"""What a duplicate delivery of a finished trigger re-publishes (mlrelay.stage.echoes): nothing
once the snapshot has a ledger record; before that the snapshot request, and `trigger.accepted`
unless the notifier has a claim for it. The crash between recording and publishing still heals."""

from __future__ import annotations

from mlrelay.contracts import RunRequest
from mlrelay.stage import keys
from mlrelay.stage.echoes import RE_REQUEST
from mlrelay.stage.envelope import PubsubMessage
from mlrelay_tools.local.runtime import LocalRuntime
from mlrelay_trigger.accept import accept_run_request
from tests.helpers import Capture
from tests.unit.trigger.test_accept import snapshot_requests


def delivered(request: RunRequest, message_id: str = "m-1") -> PubsubMessage:
    return PubsubMessage(request.to_json(), request.attributes(), message_id=message_id)  # type: ignore[arg-type]


def test_a_duplicate_publishes_nothing_once_the_snapshot_started_and_the_notifier_took_it(
    runtime: LocalRuntime, capture: Capture
) -> None:
    request = RunRequest(pipeline="penguins", dedup_key="echo-1")
    [first] = accept_run_request(request, delivered(request), runtime.ports)
    store = runtime.store
    store.create(keys.ledger(first.run_id, "snapshot"), b'{"stage": "snapshot"}')
    store.create(keys.notification(first.run_id, "trigger.accepted"), b'{"stage": "notify"}')

    [second] = accept_run_request(request, delivered(request), runtime.ports)

    assert second.reused
    assert snapshot_requests(runtime, capture) == [first.snapshot_request]
    assert capture.types() == ["trigger.accepted"]


def test_after_a_crash_between_record_and_publish_the_redelivery_still_publishes(
    runtime: LocalRuntime, capture: Capture
) -> None:
    request = RunRequest(pipeline="penguins", dedup_key="echo-2")
    # the first delivery recorded the run; forget what it published, as if its process died
    # between recording and publishing (nothing downstream ran: no snapshot, no notification)
    [first] = accept_run_request(request, delivered(request), runtime.ports)
    capture.messages.clear()
    capture.events.clear()
    runtime.store.delete(keys.published(first.run_id, "trigger"))  # it died before its marker

    [again] = accept_run_request(request, delivered(request), runtime.ports)

    assert again.reused
    assert snapshot_requests(runtime, capture) == [first.snapshot_request]
    assert capture.types() == ["trigger.accepted"]


def test_a_duplicate_publishes_nothing_once_the_snapshot_started_even_before_the_notifier(
    runtime: LocalRuntime, capture: Capture
) -> None:
    # the snapshot's record exists, so the request (and, before it, the event) went out
    request = RunRequest(pipeline="penguins", dedup_key="echo-3")
    [first] = accept_run_request(request, delivered(request), runtime.ports)
    runtime.store.create(keys.ledger(first.run_id, "snapshot"), b'{"stage": "snapshot"}')
    runtime.store.delete(keys.published(first.run_id, "trigger"))  # the next stage's rule alone

    [second] = accept_run_request(request, delivered(request), runtime.ports)

    assert second.reused
    assert snapshot_requests(runtime, capture) == [first.snapshot_request]
    assert capture.types() == ["trigger.accepted"]


def test_a_duplicate_re_publishes_only_the_request_when_the_notifier_already_took_the_event(
    runtime: LocalRuntime, capture: Capture
) -> None:
    request = RunRequest(pipeline="penguins", dedup_key="echo-4")
    [first] = accept_run_request(request, delivered(request), runtime.ports)
    runtime.store.create(keys.notification(first.run_id, "trigger.accepted"), b'{"stage": "x"}')
    runtime.store.delete(keys.published(first.run_id, "trigger"))  # it died before its marker

    accept_run_request(request, delivered(request), runtime.ports)

    assert snapshot_requests(runtime, capture) == [first.snapshot_request] * 2
    assert capture.types() == ["trigger.accepted"]


def test_a_new_request_for_a_recorded_run_is_answered_in_full_and_says_so_downstream(
    runtime: LocalRuntime, capture: Capture
) -> None:
    # `mlrelay run` again with the same dedup key: another message, the same run
    request = RunRequest(pipeline="penguins", dedup_key="echo-5")
    [first] = accept_run_request(request, delivered(request), runtime.ports)
    runtime.store.create(keys.ledger(first.run_id, "snapshot"), b'{"stage": "snapshot"}')
    runtime.store.create(keys.notification(first.run_id, "trigger.accepted"), b'{"stage": "x"}')
    capture.messages.clear()
    capture.events.clear()

    [again] = accept_run_request(request, delivered(request, "m-2"), runtime.ports)

    assert again.reused and again.run_id == first.run_id
    assert snapshot_requests(runtime, capture) == [first.snapshot_request]
    assert capture.types() == ["trigger.accepted"]
    asked = [m.attributes.get(RE_REQUEST) for _, m in capture.messages]
    assert asked == ["m-2", "m-2"]  # the event and the request: the stages after answer in full


def test_a_redelivery_of_the_new_request_is_still_only_a_redelivery_of_the_first(
    runtime: LocalRuntime, capture: Capture
) -> None:
    # a publisher's attribute is not trusted by the trigger: only the message id decides
    request = RunRequest(pipeline="penguins", dedup_key="echo-6")
    [first] = accept_run_request(request, delivered(request), runtime.ports)
    runtime.store.create(keys.ledger(first.run_id, "snapshot"), b'{"stage": "snapshot"}')
    capture.messages.clear()
    capture.events.clear()
    spoofed = PubsubMessage(request.to_json(), {RE_REQUEST: "m-9"}, message_id="m-1")

    accept_run_request(request, spoofed, runtime.ports)

    assert capture.messages == []


def test_a_redelivery_after_the_first_published_everything_publishes_nothing(
    runtime: LocalRuntime, capture: Capture
) -> None:
    # three deliveries arrive together: the snapshot has not claimed, the notifier not taken
    # the event, but the first delivery's marker says its messages are out
    request = RunRequest(pipeline="penguins", dedup_key="echo-7")
    [first] = accept_run_request(request, delivered(request), runtime.ports)
    assert runtime.store.read(keys.published(first.run_id, "trigger")) == b""
    capture.messages.clear()
    capture.events.clear()

    accept_run_request(request, delivered(request), runtime.ports)
    accept_run_request(request, delivered(request), runtime.ports)

    assert capture.messages == []
