"""The local backend's side of a cancel: kfp.local runs inside the deploy's claim, so when a
cancel command stops its child, the deploy itself ends `cancelled` and reports the same
`pipeline.cancelled` event as the command (wherever each runs: `mlrelay run` in one terminal,
`mlrelay cancel` in another); the notifier posts it once."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from mlrelay.config.settings import Settings
from mlrelay.ports.container import use_ports
from mlrelay.ports.protocols import PipelineOutcome
from mlrelay.stage import keys
from mlrelay.stage.ledger import read_run
from mlrelay_tools.local.runtime import LocalRuntime
from tests.helpers import Capture, RecordingChat, make_runtime
from tests.integration.deployer.cancel_commands import ASKED_AT, known_run
from tests.integration.deployer.vertex_deploys import RUN_ID, deploy

ASKED = {
    "action": "cancel",
    "requested_by": "slack:U0ONCALL",
    "requested_at": ASKED_AT.isoformat(),
    "source": "slack",
}


class StoppedLocalRun:
    """What LocalKfpBackend.start returns once `cancel` stopped its child (tested with the real
    child in test_kfp_local.py): status `cancelled`, who asked in its details."""

    def completion_destination(self, run_id: str) -> str:
        return "unused"

    def start(self, *, announce: Callable[[dict[str, str]], None], **_: Any) -> PipelineOutcome:
        announce({"run_dir": "file:///runs/root"})
        return PipelineOutcome(
            status="cancelled",
            job_name=RUN_ID,
            links={"log": "file:///runs/pipeline.log"},
            details={"command": dict(ASKED)},
        )

    def cancel(self, *, run_id: str, job_name: str, requested: dict[str, str]) -> str:
        raise AssertionError("not called here")


@pytest.fixture
def runtime(settings: Settings, channel: RecordingChat) -> Iterator[LocalRuntime]:
    runtime = make_runtime(settings, channel, pipeline_backends={"penguins": StoppedLocalRun()})
    known_run(runtime, RUN_ID)
    yield runtime
    use_ports(None)


def test_a_local_run_stopped_by_a_cancel_reports_cancelled_with_who_asked(
    runtime: LocalRuntime,
) -> None:
    events = Capture(runtime.settings.topics.lifecycle)
    runtime.bus.listen(events)

    deploy(runtime)
    deploy(runtime)  # a redelivery: the recorded outcome, not published twice

    cancelled = [e for e in events.events if e.status == "cancelled"]
    assert [e.event_type for e in cancelled] == ["pipeline.cancelled"]
    assert cancelled[0].details == {"command": ASKED}
    assert cancelled[0].summary == "pipeline cancelled by slack:U0ONCALL"
    assert not [e for e in events.events if e.status in ("failed", "succeeded")]
    record = read_run(runtime.store, RUN_ID)["pipeline"]
    assert record.state == "done" and (record.result or {})["status"] == "cancelled"
    assert runtime.store.read(keys.notification(RUN_ID, "pipeline.cancelled")) is not None
