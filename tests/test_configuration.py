"""Configuration documents itself: every setting declares its variable and description, the
configuration page is the rendering of those declarations, and a function reads only its own
section."""

from __future__ import annotations

import dataclasses

import pytest

from mlrelay.config.env import env_vars
from mlrelay.config.settings import SECTIONS, Settings
from mlrelay.config.snapshot import SnapshotSettings
from mlrelay.errors import ConfigurationError
from mlrelay_tools.config_doc import render

from .helpers import REPO

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


def test_the_configuration_page_is_the_rendering_of_the_declarations() -> None:
    page = (REPO / "docs" / "configuration.md").read_text()
    assert page == render(), (
        "docs/configuration.md is stale: "
        "run .venv/bin/python -m mlrelay_tools.config_doc > docs/configuration.md"
    )


def test_every_variable_is_named_once_across_sections() -> None:
    names = [var.name for s in SECTIONS for _, var in env_vars(s) if var.name is not None]
    assert len(names) == len(set(names))


def test_a_function_reads_only_its_own_section() -> None:
    env = {"MLRELAY_SNAPSHOT_MODE": "bogus", "MLRELAY_SLACK_MIN_INTERVAL": "soon"}
    settings = Settings.from_env(env)  # the trigger and the deployer start fine
    assert settings.deployer.vertex_endpoint == ""
    with pytest.raises(ConfigurationError) as snapshot:
        _ = settings.snapshot  # the snapshotter refuses, naming the variable and the fix
    assert snapshot.value.field == "MLRELAY_SNAPSHOT_MODE"
    assert snapshot.value.fix == "use export or stream"
    with pytest.raises(ConfigurationError) as chat:
        _ = settings.chat
    assert chat.value.field == "MLRELAY_SLACK_MIN_INTERVAL" and "e.g." in chat.value.fix


def test_a_section_is_read_once_and_a_given_section_wins() -> None:
    settings = Settings.from_env({"MLRELAY_SNAPSHOT_COMPRESSION": "SNAPPY"})
    assert settings.snapshot is settings.snapshot
    assert settings.snapshot.compression == "snappy"
    given = SnapshotSettings(mode="stream")
    assert Settings(sections=(given,)).snapshot is given


def test_secrets_stay_out_of_the_settings_repr() -> None:
    settings = Settings.from_env({"SLACK_BOT_TOKEN": "bot-secret-value"})
    assert settings.chat.bot_token.value == "bot-secret-value"
    assert "bot-secret-value" not in repr(settings) + repr(settings.chat)
