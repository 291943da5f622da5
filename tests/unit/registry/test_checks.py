"""The registry's checks beyond the schema (mlrelay.registry.checks): schedules, fan-out and
groups, and a backend without its section, reported with their line and field."""

from __future__ import annotations

import pytest

from mlrelay.registry import RegistryError, parse_registry
from tests.helpers import PENGUINS_TEMPLATE, REGISTRY

BROKEN = f"""\
version: 1
pipelines:
  churn:
    source: {{table: events}}
    template: {PENGUINS_TEMPLATE}
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
    template: {PENGUINS_TEMPLATE}
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


def test_every_schedule_problem_is_reported_with_its_line_and_field() -> None:
    with pytest.raises(RegistryError) as caught:
        parse_registry(BROKEN, "registry.yaml")
    found = {(p.line, p.field): p.message for p in caught.value.problems}
    assert "'default' is used twice" in found[(11, "pipelines.churn.schedules.1.name")]
    assert "expected str" in found[(14, "pipelines.churn.schedules.1.fan_out.billing")]
    assert "may not be overridden" in found[(15, "pipelines.churn.schedules.1.fan_out.search")]
    late = found[(19, "pipelines.late.schedules.0.cron")]
    assert "minute: '61' has 61, outside 0-59 (use 0-59)" in late
    assert "also a pipeline" in found[(21, "groups.churn")]
    assert "'fraud' is not a pipeline" in found[(23, "groups.churn.members.0.pipeline")]
    assert "expected int" in found[(24, "groups.churn.members.1.parameters")]
    assert "fans out over its `members`" in found[(29, "groups.churn.schedules.0.fan_out")]
    assert len(found) == 8


def test_registry_requires_the_vertex_section_for_the_vertex_backend() -> None:
    text = REGISTRY.read_text().replace("backend: local\n", "backend: vertex\n")
    with pytest.raises(Exception, match=r"registry.yaml:\d+: pipelines.penguins.backend: "):
        parse_registry(text, "registry.yaml", REGISTRY.parent)


def kfp_registry(options: str) -> str:
    text = REGISTRY.read_text().replace("backend: local\n", f"backend: kfp\n    kfp: {options}\n")
    return without_promotion(text)  # a KFP host's runs are not promoted (its own test below)


def without_promotion(text: str) -> str:
    start = text.index("    promotion:\n")
    return text[:start] + text[text.index("    notify:", start) :]


def test_kfp_host_takes_a_token_name_or_an_iap_client_id_but_not_both() -> None:
    client_id = "123456789012-abcdefghijklmnopqrstuvwxyz012345.apps.googleusercontent.com"
    host = "host: https://kfp.example.com"
    both = f"{{{host}, token: team, client_id: {client_id}}}"
    with pytest.raises(RegistryError, match=r"pipelines.penguins.kfp: .*kfp would send the token"):
        parse_registry(kfp_registry(both), "registry.yaml", REGISTRY.parent)
    with pytest.raises(RegistryError, match=r"pipelines.penguins.kfp.client_id: "):
        parse_registry(
            kfp_registry(f"{{{host}, client_id: kfp}}"), "registry.yaml", REGISTRY.parent
        )
    with pytest.raises(RegistryError, match=r"pipelines.penguins.kfp.token: "):
        parse_registry(kfp_registry(f"{{{host}, token: Team-1}}"), "registry.yaml", REGISTRY.parent)
    for one in ("token: team", f"client_id: {client_id}"):
        spec = parse_registry(kfp_registry(f"{{{host}, {one}}}"), "registry.yaml", REGISTRY.parent)
        assert spec.pipelines["penguins"].kfp is not None


def sql_registry(sql: str, listed: str) -> str:
    """A one-pipeline registry whose source is `sql` with `query_parameters: [listed]`."""
    indented = "\n".join(f"        {line}" for line in sql.splitlines())
    return f"""\
version: 1
pipelines:
  churn:
    source:
      sql: |-
{indented}
      query_parameters: [{listed}]
    template: {PENGUINS_TEMPLATE}
    parameters: {{min_year: 2007, region: eu}}
"""


# what only looks like a parameter, as the issue lists it: comments, strings, triple-quoted
# strings, a system variable, a quoted name
LOOKALIKES = """\
SELECT @@time_zone AS zone, '@region' AS a, '''@region''' AS b, \"\"\"@region\"\"\" AS c,
  r'@region' AS d, `@region` AS e  -- @region
FROM `proj.ds.t` # @region
WHERE year >= @min_year /* @region */"""


def test_a_query_whose_lookalikes_are_no_parameters_validates() -> None:
    registry = parse_registry(sql_registry(LOOKALIKES, "min_year"), "registry.yaml")
    assert registry.pipelines["churn"].source.query_parameters == ["min_year"]


def test_a_parameter_listed_but_only_in_a_comment_or_string_is_unused() -> None:
    with pytest.raises(RegistryError) as caught:
        parse_registry(sql_registry(LOOKALIKES, "min_year, region"), "registry.yaml")
    found = {(p.line, p.field): p.message for p in caught.value.problems}
    assert found == {
        (10, "pipelines.churn.source.query_parameters.1"): "@region is listed but the SQL never "
        "uses it (a comment, string or quoted name does not count); use it or remove it"
    }


def test_a_parameter_used_but_not_listed_is_named() -> None:
    sql = "SELECT @@time_zone, '@region' FROM t -- @region\nWHERE year > @min_year AND r = @region"
    with pytest.raises(RegistryError) as caught:
        parse_registry(sql_registry(sql, "min_year"), "registry.yaml")
    [problem] = caught.value.problems
    assert (problem.line, problem.field) == (5, "pipelines.churn.source.sql")
    assert problem.message == "@region is used but not listed in `query_parameters`; list it there"


def test_an_unclosed_string_in_the_query_is_named() -> None:
    sql = "SELECT 1\nWHERE year >= @min_year AND r = 'eu"
    with pytest.raises(RegistryError) as caught:
        parse_registry(sql_registry(sql, "min_year"), "registry.yaml")
    [problem] = caught.value.problems
    assert (problem.line, problem.field) == (5, "pipelines.churn.source.sql")
    assert problem.message == "the string opened on line 2 is never closed; close the string"


def test_a_parameter_name_no_listing_can_match_is_named() -> None:
    with pytest.raises(RegistryError) as caught:
        parse_registry(sql_registry("SELECT @`min year`, @min_year", "min_year"), "registry.yaml")
    [problem] = caught.value.problems
    assert problem.field == "pipelines.churn.source.sql"
    assert problem.message == (
        "@`min year` is no parameter name; use letters, digits and underscores"
    )


CUSTOM_JOB = """\
version: 1
pipelines:
  churn:
    source: {table: events}
    backend: vertex_custom_job
    vertex: {project: demo-project, region: europe-west4}
    job:
      command: [python, train.py]
    custom_job:
      worker_pools:
        - {machine_type: n1-standard-8, accelerator_type: NVIDIA_TESLA_T4, accelerator_count: 1}
        - {replica_count: 2, image: europe-docker.pkg.dev/p/r/eval:1}
      spot: true
      timeout: 6h
  local:
    source: {table: events}
    backend: local_job
    job: {command: [python, train.py]}
    custom_job: {spot: true}
"""


def test_a_custom_job_without_an_image_and_custom_job_on_another_backend_are_named() -> None:
    with pytest.raises(RegistryError) as caught:
        parse_registry(CUSTOM_JOB, "registry.yaml")
    found = {(p.line, p.field): p.message for p in caught.value.problems}
    assert "set `job.image`" in found[(7, "pipelines.churn.job.image")]
    assert (
        "is for `backend: vertex_custom_job`, not local_job"
        in found[(19, "pipelines.local.custom_job")]
    )
    assert len(found) == 2


@pytest.mark.parametrize(
    ("pools", "says"),
    [
        ("[{replica_count: 2}]", "its replica_count must be 1"),
        ("[{image: x}]", "runs the pipeline's `job:`"),
        ("[{accelerator_count: 2}]", "set `accelerator_type` and `accelerator_count` together"),
        ("[{accelerator_type: NVIDIA_L4}]", "together"),
    ],
)
def test_worker_pools_that_vertex_ai_would_refuse_are_refused_by_the_registry(
    pools: str, says: str
) -> None:
    text = CUSTOM_JOB.replace(
        "      command: [python, train.py]", "      image: i\n      command: [x]"
    )
    text = text.split("  local:")[0].replace(
        text.split("worker_pools:")[1].split("      spot")[0], f" {pools}\n"
    )
    with pytest.raises(RegistryError) as caught:
        parse_registry(text, "registry.yaml")
    assert any(says in p.message for p in caught.value.problems), caught.value.problems


def promotion_registry(backend: str, promotion: str) -> str:
    text = without_promotion(REGISTRY.read_text().replace("backend: local\n", backend + "\n"))
    return text.replace("    notify:", promotion + "    notify:", 1)


VERTEX = "backend: vertex\n    vertex: {project: demo-project, region: europe-west4}"


def test_promotion_on_vertex_ai_needs_a_serving_image() -> None:
    text = promotion_registry(VERTEX, "    promotion: {model: penguins, endpoint: '123'}\n")
    with pytest.raises(RegistryError) as caught:
        parse_registry(text, "registry.yaml", REGISTRY.parent)
    (problem,) = caught.value.problems
    assert problem.field == "pipelines.penguins.promotion.serving_image"
    assert "the container that serves the model" in problem.message
    served = "    promotion: {model: penguins, endpoint: '123', serving_image: img}\n"
    assert parse_registry(promotion_registry(VERTEX, served), "r.yaml", REGISTRY.parent)


def test_promotion_with_a_kfp_host_is_refused_saying_why() -> None:
    kfp = "backend: kfp\n    kfp: {host: 'https://kfp.example.invalid'}"
    text = promotion_registry(kfp, "    promotion: {model: penguins, endpoint: e}\n")
    with pytest.raises(RegistryError) as caught:
        parse_registry(text, "registry.yaml", REGISTRY.parent)
    (problem,) = caught.value.problems
    assert problem.field == "pipelines.penguins.promotion"
    assert "not available with `backend: kfp`" in problem.message


def test_the_demo_promotes_to_the_embedded_endpoint_without_a_vertex_section() -> None:
    registry = parse_registry(REGISTRY.read_text(), "registry.yaml", REGISTRY.parent)
    promotion = registry.pipelines["penguins"].promotion
    assert promotion is not None
    assert (promotion.endpoint, promotion.canary_percent) == ("penguins", 10)


JOB_ENTRY = """\
version: 1
pipelines:
  churn:
    source: {table: events}
    backend: local_job
    parameters: {depth: 3}
    job:
      command: [python, train.py]
      args: ["--depth={depth}", "--data={snapshot_manifest_uri}", "--q={quality}", "--x={oops"]
      env: {OUT: "{output_dir}", BRACES: "{{kept}}"}
"""


def test_a_job_argument_no_run_could_fill_is_named_by_validate_not_at_every_run() -> None:
    with pytest.raises(RegistryError) as caught:
        parse_registry(JOB_ENTRY, "registry.yaml")
    found = {p.field: p.message for p in caught.value.problems}
    assert set(found) == {"pipelines.churn.job.args.2", "pipelines.churn.job.args.3"}
    assert "{quality} names no value of this run" in found["pipelines.churn.job.args.2"]
    assert "use one of: depth, " in found["pipelines.churn.job.args.2"]
    assert "is not a valid template" in found["pipelines.churn.job.args.3"]
    fixed = JOB_ENTRY.replace(', "--q={quality}", "--x={oops"', "")
    assert parse_registry(fixed, "registry.yaml").pipelines["churn"].job is not None
