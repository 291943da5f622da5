from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mlrelay.ports.container import use_ports
from tests.helpers import seed_run
from tests.unit.interactions.door_kit import Door, open_door

RUN = "penguins-sched-20261130t0500z-1a2b3c4d"


@pytest.fixture
def door(tmp_path: Path) -> Iterator[Door]:
    opened = open_door(tmp_path / "home")
    seed_run(opened.runtime.store, RUN)
    yield opened
    use_ports(None)
