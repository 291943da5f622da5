"""Render docs/configuration.md from the settings declared in `mlrelay.config`.

    python -m mlrelay_tools.config_doc > docs/configuration.md

A test compares the page with this rendering, so a setting added without a description, or a
page edited by hand, fails the suite.
"""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path
from typing import Any

from mlrelay.config.chat import ChatSettings
from mlrelay.config.deployer import DeployerSettings
from mlrelay.config.env import Secret, env_vars
from mlrelay.config.interactions import InteractionSettings
from mlrelay.config.settings import SECTIONS, Settings
from mlrelay.config.snapshot import SnapshotSettings
from mlrelay.config.topics import Topics

READ_BY: dict[type[Any], str] = {
    Settings: "every function and the CLI",
    Topics: "every function, the local bus and Terraform (`infra/`)",
    SnapshotSettings: "the snapshotter, the first time it takes a snapshot",
    ChatSettings: "the notifier and the dead-letter function, the first time they post (and the "
    "interactions function, for the bot token that looks up user groups)",
    DeployerSettings: "the deployer, the first time it starts a pipeline",
    InteractionSettings: "the interactions function, on its first request",
}


def _default(f: dataclasses.Field[Any]) -> str:
    if f.default is not dataclasses.MISSING:
        value: Any = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        return "required"
    if isinstance(value, Secret) or value in ({}, ""):
        return "unset"
    if isinstance(value, Path):
        value = value.as_posix()
    return f"`{value}`"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def render() -> str:
    lines = [
        "# Configuration",
        "",
        "Every setting is an environment variable, read once into typed settings at start-up.",
        "A function reads the common settings and only its own section; the CLI reads every",
        "section before it starts anything. Secrets (marked) never print: logs and `repr` show",
        "only whether they are set. In the cloud, `infra/` sets these on each function, the",
        "secrets from Secret Manager.",
        "",
        "This page is generated from the declarations in `shared/mlrelay/config/`:",
        "`.venv/bin/python -m mlrelay_tools.config_doc > docs/configuration.md`. A test fails",
        "when the two differ.",
    ]
    for section in SECTIONS:
        doc = inspect.getdoc(section) or ""
        lines += [
            "",
            f"## {section.__name__}",
            "",
            f"`{section.__module__}`, read by {READ_BY[section]}. {_cell(doc)}".rstrip(),
            "",
            "| variable | default | what it does |",
            "|---|---|---|",
        ]
        code_only = []
        for f, var in env_vars(section):
            if var.name is None:
                code_only.append(f"`{f.name}` ({_default(f)}): {_cell(var.doc).rstrip('.')}")
                continue
            name = f"`{var.name}<NAME>`" if var.prefix else f"`{var.name}`"
            if var.secret:
                name += " (secret)"
            lines.append(f"| {name} | {_default(f)} | {_cell(var.doc)} |")
        if code_only:
            lines += [
                "",
                "Set in code only (the local runtime and tests): " + "; ".join(code_only) + ".",
            ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render(), end="")
