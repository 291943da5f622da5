"""The notifier's integration tests: the loopback Slack Web API (tests/fakes/slack.py) each test
may post to, and the process's ports put back after every test (the runtimes set them)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mlrelay.ports.container import use_ports
from tests.fakes.slack import FakeSlack


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    fake = FakeSlack().start()
    yield fake
    fake.stop()


@pytest.fixture(autouse=True)
def _reset_ports() -> Iterator[None]:
    yield
    use_ports(None)
