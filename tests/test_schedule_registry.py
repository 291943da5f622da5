"""Schedules, fan-out and groups in the registry: every problem with its line and field."""

from __future__ import annotations

import pytest

from mlrelay.registry import RegistryError, parse_registry
from mlrelay.schedules.members import members_of

from .helpers import REPO

TEMPLATE = REPO / "pipelines" / "penguins" / "penguins_pipeline.yaml"

GOOD = f"""\
version: 1
pipelines:
  churn:
    source: {{table: events}}
    template: {TEMPLATE}
    parameters: {{service: all, depth: 3}}
    overridable: [service, depth]
    schedules:
      - cron: "0 6 * * MON"
        time_zone: Europe/Amsterdam
      - name: per-service
        cron: "0 7 * * *"
        time_zone: UTC
        fan_out:
          billing: {{service: billing}}
          search: {{service: search, depth: 5}}
groups:
  all:
    members:
      - {{pipeline: churn}}
      - {{pipeline: churn, parameters: {{service: x}}}}
    schedules:
      - {{name: nightly, cron: "0 1 * * *", time_zone: Asia/Tokyo}}
"""

BROKEN = f"""\
version: 1
pipelines:
  churn:
    source: {{table: events}}
    template: {TEMPLATE}
    parameters: {{service: all, depth: 3, seed: 1}}
    overridable: [service, depth]
    schedules:
      - cron: "0 6 * * *"
        time_zone: UTC
      - cron: "0 7 * * *"
        time_zone: UTC
        fan_out:
          billing: {{service: 7}}
          search: {{seed: 2}}
  late:
    source: {{table: events}}
    template: {TEMPLATE}
    schedules: [{{cron: "61 * * * *", time_zone: UTC}}]
groups:
  churn:
    members:
      - {{pipeline: fraud}}
      - {{pipeline: churn, parameters: {{depth: deep}}}}
    schedules:
      - name: nightly
        cron: "0 1 * * *"
        time_zone: UTC
        fan_out: {{a: {{}}}}
"""


def test_fan_out_and_group_members_each_become_a_run_with_their_parameters() -> None:
    registry = parse_registry(GOOD)
    churn = registry.pipelines["churn"]
    assert [s.name for s in churn.schedules] == ["default", "per-service"]
    fanned = members_of(registry, "churn", churn.schedules[1])
    assert [(m.label, m.parameters) for m in fanned] == [
        ("billing", {"service": "billing"}),
        ("search", {"service": "search", "depth": 5}),
    ]
    assert [m.label for m in members_of(registry, "churn", churn.schedules[0])] == ["churn"]
    group = members_of(registry, "all", registry.groups["all"].schedules[0])
    assert [(m.pipeline, m.label) for m in group] == [("churn", "churn-1"), ("churn", "churn-2")]


def test_every_schedule_problem_is_reported_with_its_line_and_field() -> None:
    with pytest.raises(RegistryError) as caught:
        parse_registry(BROKEN, "registry.yaml")
    found = {(p.line, p.field): p.message for p in caught.value.problems}
    assert "'default' is used twice" in found[(11, "pipelines.churn.schedules.1.name")]
    assert "expected str" in found[(14, "pipelines.churn.schedules.1.fan_out.billing")]
    assert "may not be overridden" in found[(15, "pipelines.churn.schedules.1.fan_out.search")]
    assert "out of range" in found[(19, "pipelines.late.schedules.0")]
    assert "also a pipeline" in found[(21, "groups.churn")]
    assert "'fraud' is not a pipeline" in found[(23, "groups.churn.members.0.pipeline")]
    assert "expected int" in found[(24, "groups.churn.members.1.parameters")]
    assert "fans out over its `members`" in found[(29, "groups.churn.schedules.0.fan_out")]
    assert len(found) == 8
