"""The functions mlrelay deploys (mlrelay.config.functions): each service's main.py exposes the
entry point the deploy names, and ships its requirements."""

from __future__ import annotations

from typing import Any

import pytest

from mlrelay.config.functions import FUNCTIONS, HTTP_FUNCTIONS
from tests.helpers import REPO


@pytest.mark.parametrize("spec", FUNCTIONS, ids=lambda s: s.name)
def test_every_main_exposes_the_entry_point_the_deploy_uses(spec: Any) -> None:
    text = (REPO / "services" / spec.service_dir / "main.py").read_text()
    assert f"{spec.entry_point} = functions_framework.cloud_event(entry.{spec.entry_point})" in text
    assert (REPO / "services" / spec.service_dir / "requirements.txt").is_file()


@pytest.mark.parametrize("spec", HTTP_FUNCTIONS, ids=lambda s: s.name)
def test_every_http_main_exposes_its_entry_point(spec: Any) -> None:
    text = (REPO / "services" / spec.service_dir / "main.py").read_text()
    assert f"{spec.entry_point} = functions_framework.http(entry.{spec.entry_point})" in text
    assert (REPO / "services" / spec.service_dir / "requirements.txt").is_file()
