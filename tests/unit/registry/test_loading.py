"""Loading the pipeline registry (mlrelay.registry.loading): the shipped one is valid, and every
problem of a broken one is reported with its line and field, by `mlrelay validate` too."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from mlrelay.registry import RegistryError, load_registry, parse_registry
from mlrelay_tools.cli.main import cli
from tests.helpers import REGISTRY

BROKEN = """\
version: 1
pipelines:
  churn:
    source:
      table: sales.orders
      sql: SELECT 1
    schedules:
      - cron: "every day"
        time_zone: Mars/Olympus
    template: missing.yaml
    backend: airflow
    parameters:
      lr: 0.1
    overridable: [lr, epochs]
  Bad_Name:
    source: {table: t}
    template: x.yaml
"""


def test_the_shipped_registry_is_valid() -> None:
    registry = load_registry(REGISTRY)
    spec = registry.pipeline("penguins")
    assert spec.source.kind == "query"
    assert Path(registry.template_location("penguins")).is_file()


def test_every_problem_is_reported_with_its_line_and_field(tmp_path: Path) -> None:
    with pytest.raises(RegistryError) as caught:
        parse_registry(BROKEN, "reg.yaml", tmp_path)
    found = {(p.line, p.field) for p in caught.value.problems}
    assert (4, "pipelines.churn.source") in found  # both table and sql
    assert (8, "pipelines.churn.schedules.0.cron") in found
    assert (9, "pipelines.churn.schedules.0.time_zone") in found
    assert (11, "pipelines.churn.backend") in found
    assert (15, "pipelines.Bad_Name") in found
    text = "\n".join(str(p) for p in caught.value.problems)
    assert "reg.yaml:11: pipelines.churn.backend:" in text
    assert "'local', 'vertex', 'kfp', 'local_job' or 'vertex_custom_job'" in text
    assert "needs 5 fields" in text and "not an IANA zone" in text
    assert "reg.yaml:15: pipelines.Bad_Name: the name 'Bad_Name' must be lowercase" in text
    assert (10, "pipelines.churn.overridable.1") not in found  # pipeline invalid: no 2nd pass


def test_semantic_problems_point_at_the_offending_line(tmp_path: Path) -> None:
    text = """\
version: 1
pipelines:
  churn:
    source:
      sql: SELECT * FROM t WHERE d > @since AND r = @region
      query_parameters: [since]
    template: nowhere.yaml
    parameters:
      since: "2024-01-01"
    overridable: [since, epochs]
"""
    with pytest.raises(RegistryError) as caught:
        parse_registry(text, "reg.yaml", tmp_path)
    problems = {(p.line, p.field): p.message for p in caught.value.problems}
    assert "@region is used but not listed" in problems[(5, "pipelines.churn.source.sql")]
    assert "does not exist" in problems[(7, "pipelines.churn.template")]
    assert "'epochs' has no default" in problems[(10, "pipelines.churn.overridable.1")]


def test_yaml_syntax_errors_have_a_line(tmp_path: Path) -> None:
    with pytest.raises(RegistryError) as caught:
        parse_registry("pipelines:\n  a: [1, 2\n", "reg.yaml", tmp_path)
    assert caught.value.problems[0].field == "(yaml)"
    assert caught.value.problems[0].line >= 2


def test_validate_command_lists_problems_and_fails(tmp_path: Path) -> None:
    bad = tmp_path / "reg.yaml"
    bad.write_text(BROKEN)
    result = CliRunner().invoke(cli, ["validate", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}:11: pipelines.churn.backend" in result.output
    ok = CliRunner().invoke(cli, ["validate", str(REGISTRY)])
    assert ok.exit_code == 0, ok.output
    assert "OK, 2 pipeline(s): penguins, penguins-job" in ok.output


def test_a_cron_cloud_scheduler_or_kfp_would_refuse_names_the_cron_field_and_the_fix() -> None:
    text = (
        REGISTRY.read_text()
        .replace('cron: "0 6 * * 1"', 'cron: "0 6 L * *"')
        .replace(
            "backend: local\n",
            "backend: kfp\n    kfp:\n      host: http://kfp.example\n"
            "      recurring: {cron: '0 0 6 * * 7', max_concurrency: 1, catchup: false}\n",
        )
    )
    with pytest.raises(RegistryError) as caught:
        parse_registry(text, "reg.yaml")
    found = {p.field: p.message for p in caught.value.problems}
    schedule = found["pipelines.penguins.schedules.0.cron"]
    assert schedule.startswith("day-of-month: 'L' uses L (the last day of the month)")
    assert "Cloud Scheduler's unix-cron does not support" in schedule and "28-31" in schedule
    recurring = found["pipelines.penguins.kfp.recurring.cron"]
    assert "day-of-week: '7' has 7, outside 0-6" in recurring and "write 0 or SUN" in recurring
