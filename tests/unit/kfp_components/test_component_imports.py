"""Every component of the shipped penguins template gets its imports where it runs (its image or
its install list), the completion reporter needs only the standard library, and the tables the
check stands on agree with the installed distributions."""

from __future__ import annotations

import importlib.metadata
import inspect
import sys
from typing import Any

import yaml
from packaging.requirements import Requirement

from mlrelay.kfp_components import report_pipeline_completion
from mlrelay.kfp_components.component_imports import (
    DISTRIBUTION_IMPORTS,
    ExecutorImports,
    distribution_name,
    function_imports,
    import_gaps,
    template_executors,
)
from tests.helpers import PENGUINS_TEMPLATE


def penguins_spec() -> dict[str, Any]:
    spec = yaml.safe_load(PENGUINS_TEMPLATE.read_text())
    assert isinstance(spec, dict)
    return spec


def executors() -> dict[str, ExecutorImports]:
    return {e.function: e for e in template_executors(penguins_spec())}


def test_every_penguins_component_import_is_provided_by_its_image_or_install_list() -> None:
    found = executors()

    assert set(found) == {"preprocess", "train", "evaluate", "report_pipeline_completion"}
    assert {"pandas", "pyarrow", "sklearn"} <= found["preprocess"].third_party  # it did parse
    assert import_gaps(penguins_spec()) == []


def test_the_completion_reporter_needs_only_the_standard_library() -> None:
    source = inspect.getsource(report_pipeline_completion)
    body = function_imports(source, "report_pipeline_completion")

    assert body  # it did parse: urllib, json...
    assert body <= sys.stdlib_module_names
    reporter = executors()["report_pipeline_completion"]
    # in the template: nothing installed but KFP's own bootstrap, nothing imported but kfp
    assert [distribution_name(p) for p in reporter.packages] == ["kfp", "typing-extensions"]
    assert reporter.third_party == {"kfp"}


def test_a_component_importing_what_nothing_provides_is_a_gap() -> None:
    spec = penguins_spec()
    train = spec["deploymentSpec"]["executors"]["exec-train"]["container"]
    train["command"][-1] += "\n\ndef extra() -> None:\n    import xgboost\n"

    [gap] = import_gaps(spec)
    assert gap.startswith("exec-train (train) imports xgboost, which its image 'python:3.11-slim'")


def test_the_distribution_table_matches_what_each_installed_wheel_provides() -> None:
    installed: dict[str, set[str]] = {}
    for name, distributions in importlib.metadata.packages_distributions().items():
        for distribution in distributions:
            installed.setdefault(distribution_name(distribution), set()).add(name)

    for distribution, imports in DISTRIBUTION_IMPORTS.items():
        assert distribution in installed, f"{distribution} is not installed to check it against"
        assert imports <= installed[distribution], distribution


def test_this_environment_satisfies_the_install_list_so_a_local_run_downloads_nothing() -> None:
    for requirement in {p for e in executors().values() for p in e.packages}:
        wanted = Requirement(requirement)
        if wanted.marker is not None and not wanted.marker.evaluate():
            continue
        version = importlib.metadata.version(wanted.name)
        assert wanted.specifier.contains(version, prereleases=True), (
            f"{wanted.name} {version} is installed, the penguins template asks for {requirement}: "
            "update PACKAGES in pipelines/penguins/pipeline.py and recompile"
        )
