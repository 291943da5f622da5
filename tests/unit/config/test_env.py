"""Configuration documents itself: every setting declares its variable and description, and a
variable is named by one setting only."""

from __future__ import annotations

import dataclasses

import pytest

from mlrelay.config.env import env_vars
from mlrelay.config.settings import SECTIONS

PLUMBING = {"sections", "env"}  # how sections are given or read, not settings themselves


@pytest.mark.parametrize("section", SECTIONS, ids=lambda s: s.__name__)
def test_every_setting_declares_its_variable_and_description(section: type) -> None:
    declared = {f.name for f, var in env_vars(section) if var.doc.strip()}
    nested = [f for f in dataclasses.fields(section) if "section" in f.metadata]
    undeclared = (
        {f.name for f in dataclasses.fields(section)}
        - declared
        - {f.name for f in nested}
        - PLUMBING
    )
    assert not undeclared, f"{section.__name__}: declare these with setting(...): {undeclared}"
    assert all(f.metadata["section"] in SECTIONS for f in nested)


def test_every_variable_is_named_once_across_sections() -> None:
    names = [var.name for s in SECTIONS for _, var in env_vars(s) if var.name is not None]
    assert len(names) == len(set(names))
