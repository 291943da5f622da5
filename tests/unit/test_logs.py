from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

from cloudevents.http import CloudEvent

from mlrelay.config.settings import Settings
from mlrelay.logs import configure_logging
from mlrelay.ports.container import use_ports
from tests.helpers import RecordingChat, make_runtime


def ack_without_work(handler: Callable[[CloudEvent], None]) -> Callable[[CloudEvent], None]:
    def acked(event: CloudEvent) -> None:
        return None

    return acked


def test_every_log_line_of_a_run_is_cloud_logging_json_with_the_run_id(
    settings: Settings, channel: RecordingChat
) -> None:
    out = io.StringIO()
    configure_logging("json", "DEBUG", stream=out)
    runtime = make_runtime(settings, channel, wrap={"mlrelay-deployer": ack_without_work})
    try:
        runtime.bus.publish(
            settings.topics.runs,
            json.dumps({"pipeline": "penguins", "dedup_key": "logs"}).encode(),
            {"event_type": "run_request"},
        )
        runtime.bus.run_until_idle()
    finally:
        use_ports(None)
        configure_logging("console", "INFO")
    lines: list[dict[str, Any]] = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(lines) >= 5
    run_ids = {line["logging.googleapis.com/labels"]["run_id"] for line in lines}
    assert len(run_ids) == 1 and run_ids.pop().startswith("penguins-logs-")
    for line in lines:
        assert line["severity"] in ("DEBUG", "INFO", "WARNING", "ERROR")
        assert line["message"] and "time" in line
    assert {"run_accepted", "snapshot_done"} <= {line["message"] for line in lines}
