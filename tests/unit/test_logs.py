from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable
from typing import Any

from cloudevents.http import CloudEvent
from google.api_core import client_logging

from mlrelay.config.env import Secret
from mlrelay.config.settings import Settings
from mlrelay.logs import bind_run, configure_logging
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


def test_library_log_lines_are_cloud_logging_json_with_the_run_id_and_no_secret() -> None:
    out = io.StringIO()
    configure_logging("json", "INFO", stream=out)
    token = Secret("kfp-host-token-6f1e2d9a")  # no known shape: scrubbed because it is held
    try:
        with bind_run(run_id="penguins-lib-1a2b3c4d", pipeline="penguins"):
            logging.getLogger("slack_sdk.web.base_client").warning(
                "Retrying %s with token %s", "https://slack.com/api/chat.postMessage", token.value
            )
            logging.getLogger("urllib3.connectionpool").warning(
                "Retrying POST https://hooks.slack.com/services/tfake0/bfake0/cccc after 503"
            )
        # as a Google client does when it is first made: the "google" logger stops propagating
        client_logging.initialize_logging()
        logging.getLogger("google.api_core.retry").info("retrying, Bearer ya29.a0Afake-token")
    finally:
        configure_logging("console", "INFO")
    slack, urllib3, google = (json.loads(line) for line in out.getvalue().splitlines())
    for line in (slack, urllib3):
        assert line["logging.googleapis.com/labels"]["run_id"] == "penguins-lib-1a2b3c4d"
        assert line["severity"] == "WARNING" and "time" in line
    assert slack["logger"] == "slack_sdk.web.base_client"
    assert token.value not in out.getvalue() and "[redacted]" in slack["message"]
    assert "bfake0" not in urllib3["message"] and "hooks.slack.com/[redacted]" in urllib3["message"]
    assert "ya29" not in google["message"] and google["severity"] == "INFO"
    assert "logging.googleapis.com/labels" not in google  # outside the run: no run id
