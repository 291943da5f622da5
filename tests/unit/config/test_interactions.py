"""The interactions section: the signing secret is a `Secret` (never printed, scrubbed from every
log line of the process that holds it) and the door's limits are read from the environment."""

from __future__ import annotations

import io
import json
import logging

import pytest
import structlog

from mlrelay.config.settings import Settings
from mlrelay.errors import ConfigurationError
from mlrelay.logs import configure_logging


def test_the_signing_secret_is_read_as_a_secret_and_scrubbed_from_logs() -> None:
    value = "".join(chr(ord("a") + i % 6) for i in range(32))  # built at run time
    settings = Settings.from_env({"SLACK_SIGNING_SECRET": value})
    section = settings.interactions
    assert section.signing_secret.value == value
    assert value not in repr(section) and "Secret(set)" in repr(section)
    out = io.StringIO()
    configure_logging("json", "INFO", stream=out)
    try:
        structlog.get_logger().warning("echo", detail=f"signed with {value}")
        logging.getLogger("slack_sdk.signature").warning("secret %s", value)
    finally:
        configure_logging("console", "INFO")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(lines) == 2
    assert value not in out.getvalue()
    assert all("[redacted]" in json.dumps(line) for line in lines)


def test_the_door_limits_come_from_the_environment() -> None:
    section = Settings.from_env(
        {
            "MLRELAY_INTERACTIONS_MAX_BODY_BYTES": "1024",
            "MLRELAY_SLACK_USER_GROUP_CACHE_SECONDS": "0",
            "MLRELAY_SLACK_RESPONSE_URL_PREFIX": "http://127.0.0.1:1/",
        }
    ).interactions
    assert section.max_body_bytes == 1024
    assert section.user_group_cache_seconds == 0
    assert section.response_url_prefix == "http://127.0.0.1:1/"
    assert not section.signing_secret


def test_a_bad_limit_names_its_variable() -> None:
    with pytest.raises(ConfigurationError, match="MLRELAY_INTERACTIONS_MAX_BODY_BYTES"):
        _ = Settings.from_env({"MLRELAY_INTERACTIONS_MAX_BODY_BYTES": "lots"}).interactions
