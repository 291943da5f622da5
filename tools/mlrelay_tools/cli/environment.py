"""The settings a command runs with: every section read from the environment at once, so a bad
variable stops the command before it starts anything, as a click error naming the fix."""

from __future__ import annotations

import click

from mlrelay.config.settings import Settings
from mlrelay.errors import ExplainedError


def settings_from_env() -> Settings:
    try:
        return Settings.from_env().read_every_section()
    except ExplainedError as exc:
        raise click.ClickException(str(exc)) from None
