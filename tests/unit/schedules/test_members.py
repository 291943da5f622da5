"""The runs a schedule stands for (mlrelay.schedules.members): one per fan-out member, one per
group member, each with its parameters."""

from __future__ import annotations

from mlrelay.registry import parse_registry
from mlrelay.schedules.members import members_of
from tests.helpers import PENGUINS_TEMPLATE

GOOD = f"""\
version: 1
pipelines:
  churn:
    source: {{table: events}}
    template: {PENGUINS_TEMPLATE}
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
