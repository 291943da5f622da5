"""docs/configuration.md is the rendering of the settings' declarations
(mlrelay_tools.config_doc)."""

from __future__ import annotations

from mlrelay_tools.config_doc import render
from tests.helpers import REPO


def test_the_configuration_page_is_the_rendering_of_the_declarations() -> None:
    page = (REPO / "docs" / "configuration.md").read_text()
    assert page == render(), (
        "docs/configuration.md is stale: "
        "run .venv/bin/python -m mlrelay_tools.config_doc > docs/configuration.md"
    )
