"""`mlrelay schedules plan|apply` through the official google-cloud-scheduler client (REST
transport) against a loopback server that plays Cloud Scheduler and records every request."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from mlrelay.contracts import RunRequest, parse_message
from mlrelay.errors import PermanentError
from mlrelay.registry import load_registry, parse_registry
from mlrelay_tools.cli.main import cli
from mlrelay_tools.schedules.cloud_scheduler import CloudSchedulerJobs
from mlrelay_tools.schedules.jobs import desired_jobs
from mlrelay_tools.schedules.sync import apply_changes, plan_changes
from tests.fakes.scheduler import FakeScheduler
from tests.helpers import PENGUINS_TEMPLATE

PROJECT, LOCATION = "test-proj", "europe-west1"
PARENT = f"projects/{PROJECT}/locations/{LOCATION}"
TOPIC = f"projects/{PROJECT}/topics/mlrelay-runs"

REGISTRY = f"""\
version: 1
pipelines:
  churn:
    source: {{table: events}}
    template: {PENGUINS_TEMPLATE}
    parameters: {{service: all, depth: 3}}
    overridable: [service, depth]
    schedules:
      - name: nightly
        cron: "30 2 * * *"
        time_zone: Europe/Amsterdam
      - name: per-service
        cron: "0 6 * * 1"
        time_zone: America/New_York
        fan_out:
          billing: {{service: billing}}
          search: {{service: search, depth: 5}}
  fraud:
    source: {{table: payments}}
    template: {PENGUINS_TEMPLATE}
    schedules:
      - cron: "0 * * * *"
        time_zone: UTC
groups:
  weekly-all:
    members:
      - {{pipeline: churn}}
      - {{pipeline: fraud}}
    schedules:
      - name: weekly
        cron: "0 4 * * 0"
        time_zone: Asia/Kolkata
"""


@pytest.fixture
def scheduler() -> Iterator[FakeScheduler]:
    with FakeScheduler() as fake:
        yield fake


@pytest.fixture
def registry_file(tmp_path: Path) -> Path:
    path = tmp_path / "registry.yaml"
    path.write_text(REGISTRY)
    return path


def mlrelay(scheduler: FakeScheduler, registry: Path, *args: str) -> Result:
    env = {
        "GOOGLE_CLOUD_PROJECT": PROJECT,
        "MLRELAY_REGISTRY": str(registry),
        "MLRELAY_SCHEDULER_ENDPOINT": scheduler.endpoint,
        "MLRELAY_SCHEDULER_LOCATION": LOCATION,
    }
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def lines(result: Result) -> list[str]:
    return [" ".join(line.split()) for line in result.stdout.splitlines()]


def test_apply_creates_one_job_per_schedule_with_a_run_request_tick_for_the_runs_topic(
    scheduler: FakeScheduler, registry_file: Path
) -> None:
    result = mlrelay(scheduler, registry_file, "schedules", "apply")
    assert result.exit_code == 0, result.output
    creates = [r for r in scheduler.writes() if r.method == "POST"]
    assert [r.path for r in creates] == [f"/v1/{PARENT}/jobs"] * 4
    bodies = {r.body["name"].rsplit("/", 1)[1]: r.body for r in creates if r.body}
    assert sorted(bodies) == [
        "mlrelay_group_weekly-all_weekly",
        "mlrelay_pipeline_churn_nightly",
        "mlrelay_pipeline_churn_per-service",
        "mlrelay_pipeline_fraud_default",
    ]
    nightly = bodies["mlrelay_pipeline_churn_nightly"]
    assert nightly["schedule"] == "30 2 * * *"
    assert nightly["timeZone"] == "Europe/Amsterdam"  # explicit, never the service default
    target = nightly["pubsubTarget"]
    assert target["topicName"] == TOPIC
    tick = parse_message(RunRequest, base64.b64decode(target["data"]))
    assert tick.pipeline == "churn" and tick.trigger == "schedule"
    assert tick.logical_time is None and tick.dedup_key is None  # the slot comes per tick
    assert tick.schedule is not None
    assert (tick.schedule.name, tick.schedule.cron, tick.schedule.time_zone) == (
        "nightly",
        "30 2 * * *",
        "Europe/Amsterdam",
    )
    assert target["attributes"] == {
        "event_type": "run_request",
        "schema_version": "1",
        "pipeline": "churn",
        "schedule": "nightly",
        "mlrelay_managed_by": "cli",  # who may change the job: `schedules apply`
    }
    assert "2 runs per tick" in bodies["mlrelay_pipeline_churn_per-service"]["description"]
    group = parse_message(
        RunRequest,
        base64.b64decode(bodies["mlrelay_group_weekly-all_weekly"]["pubsubTarget"]["data"]),
    )
    assert group.pipeline == "weekly-all"


def test_a_second_apply_changes_nothing(scheduler: FakeScheduler, registry_file: Path) -> None:
    assert mlrelay(scheduler, registry_file, "schedules", "apply").exit_code == 0
    before = len(scheduler.writes())
    again = mlrelay(scheduler, registry_file, "schedules", "apply")
    assert again.exit_code == 0
    assert lines(again) == ["in step: nothing to change"]
    assert len(scheduler.writes()) == before  # only reads the second time
    assert lines(mlrelay(scheduler, registry_file, "schedules", "plan")) == [
        "in step: nothing to change"
    ]


def test_plan_after_a_registry_edit_lists_exactly_that_edit(
    scheduler: FakeScheduler, registry_file: Path
) -> None:
    assert mlrelay(scheduler, registry_file, "schedules", "apply").exit_code == 0
    registry_file.write_text(REGISTRY.replace('"30 2 * * *"', '"45 3 * * *"'))
    assert lines(mlrelay(scheduler, registry_file, "schedules", "plan")) == [
        "update mlrelay_pipeline_churn_nightly (schedule, pubsub_target)"
    ]
    registry_file.write_text(
        REGISTRY.replace(
            "        time_zone: UTC\n", "        time_zone: UTC\n        paused: true\n"
        )
    )
    assert lines(mlrelay(scheduler, registry_file, "schedules", "plan")) == [
        "pause mlrelay_pipeline_fraud_default"
    ]
    registry_file.write_text(REGISTRY.replace("  weekly-all:", "  weekly-every:"))
    assert lines(mlrelay(scheduler, registry_file, "schedules", "plan")) == [
        "create mlrelay_group_weekly-every_weekly [0 4 * * 0 Asia/Kolkata]",
        "delete mlrelay_group_weekly-all_weekly",
    ]


def test_a_cron_edit_is_applied_in_place_and_a_new_template_touches_no_job(
    scheduler: FakeScheduler, registry_file: Path, tmp_path: Path
) -> None:
    assert mlrelay(scheduler, registry_file, "schedules", "apply").exit_code == 0
    moved = tmp_path / "v2.yaml"
    moved.write_text(PENGUINS_TEMPLATE.read_text())
    registry_file.write_text(REGISTRY.replace(str(PENGUINS_TEMPLATE), str(moved)))
    assert lines(mlrelay(scheduler, registry_file, "schedules", "plan")) == [
        "in step: nothing to change"
    ]
    registry_file.write_text(REGISTRY.replace("Europe/Amsterdam", "Europe/London"))
    before = len(scheduler.writes())
    assert mlrelay(scheduler, registry_file, "schedules", "apply").exit_code == 0
    [patch] = scheduler.writes()[before:]
    assert patch.method == "PATCH"
    assert patch.path == f"/v1/{PARENT}/jobs/mlrelay_pipeline_churn_nightly"
    assert patch.query["updateMask"] == ["timeZone,pubsubTarget"]
    assert patch.body is not None and patch.body["timeZone"] == "Europe/London"
    stored = scheduler.jobs[f"{PARENT}/jobs/mlrelay_pipeline_churn_nightly"]
    assert stored["timeZone"] == "Europe/London" and stored["state"] == "ENABLED"


def test_pause_and_resume_follow_the_registry_and_unmanaged_jobs_are_left_alone(
    scheduler: FakeScheduler, registry_file: Path
) -> None:
    scheduler.jobs[f"{PARENT}/jobs/someone-elses-job"] = {
        "name": f"{PARENT}/jobs/someone-elses-job",
        "schedule": "* * * * *",
        "timeZone": "UTC",
        "state": "ENABLED",
    }
    paused = REGISTRY.replace(
        "        time_zone: UTC\n", "        time_zone: UTC\n        paused: true\n"
    )
    registry_file.write_text(paused)
    assert mlrelay(scheduler, registry_file, "schedules", "apply").exit_code == 0
    assert scheduler.jobs[f"{PARENT}/jobs/mlrelay_pipeline_fraud_default"]["state"] == "PAUSED"
    assert lines(mlrelay(scheduler, registry_file, "schedules", "plan")) == [
        "in step: nothing to change"
    ]
    registry_file.write_text(REGISTRY)
    assert lines(mlrelay(scheduler, registry_file, "schedules", "apply")) == [
        "done: resume mlrelay_pipeline_fraud_default"
    ]
    assert f"{PARENT}/jobs/someone-elses-job" in scheduler.jobs


def jobs_client(scheduler: FakeScheduler) -> CloudSchedulerJobs:
    return CloudSchedulerJobs(PROJECT, LOCATION, endpoint=scheduler.endpoint, initial_backoff=0.01)


def test_429_and_5xx_answers_are_retried_until_the_change_is_made(
    scheduler: FakeScheduler, registry_file: Path
) -> None:
    jobs = jobs_client(scheduler)
    desired = desired_jobs(load_registry(registry_file), TOPIC)
    scheduler.fail_next("POST", "/jobs", 429)
    scheduler.fail_next("POST", "/jobs", 503)
    scheduler.fail_next("POST", "/jobs", 500)
    apply_changes(jobs, plan_changes(desired, jobs.list_jobs()))
    statuses = [r.status for r in scheduler.requests if r.method == "POST"]
    assert statuses[:4] == [429, 503, 500, 200]
    assert len(scheduler.jobs) == 4
    assert plan_changes(desired, jobs.list_jobs()) == []


def test_a_job_created_or_deleted_since_the_plan_still_ends_in_step(
    scheduler: FakeScheduler, registry_file: Path
) -> None:
    jobs = jobs_client(scheduler)
    desired = desired_jobs(load_registry(registry_file), TOPIC)
    plan = plan_changes(desired, [])  # made before anything existed
    stale = {"name": f"{PARENT}/jobs/{desired[0].job_id}", "schedule": "1 1 1 1 1"}
    scheduler.jobs[stale["name"]] = {**stale, "timeZone": "UTC", "state": "ENABLED"}
    apply_changes(jobs, plan)  # 409 on that create: updated instead
    answered = [(r.method, r.status) for r in scheduler.requests]
    assert ("POST", 409) in answered and ("PATCH", 200) in answered
    assert plan_changes(desired, jobs.list_jobs()) == []

    gone = plan_changes([], jobs.list_jobs())  # delete everything...
    del scheduler.jobs[f"{PARENT}/jobs/{desired[1].job_id}"]  # ...one is already gone: 404
    apply_changes(jobs, gone)
    assert scheduler.jobs == {}


def test_a_refusal_names_the_job_and_what_to_check(
    scheduler: FakeScheduler, registry_file: Path
) -> None:
    jobs = jobs_client(scheduler)
    desired = desired_jobs(load_registry(registry_file), TOPIC)
    scheduler.fail_next("POST", "/jobs", 403)
    with pytest.raises(PermanentError) as caught:
        apply_changes(jobs, plan_changes(desired, []))
    first = min(job.job_id for job in desired)
    assert caught.value.field == f"job {first}"
    assert "refused to create" in str(caught.value)
    assert "roles/cloudscheduler.admin" in str(caught.value)


def test_plan_requires_a_project(scheduler: FakeScheduler, registry_file: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["schedules", "plan", "--location", LOCATION],
        env={"GOOGLE_CLOUD_PROJECT": "", "MLRELAY_REGISTRY": str(registry_file)},
    )
    assert result.exit_code == 1
    assert "GOOGLE_CLOUD_PROJECT is not set" in result.output
    assert json.dumps(scheduler.requests) == "[]"


def test_plan_exits_2_while_changes_are_pending_and_0_once_in_step(
    scheduler: FakeScheduler, registry_file: Path
) -> None:
    pending = mlrelay(scheduler, registry_file, "schedules", "plan")
    assert pending.exit_code == 2, pending.output  # as `terraform plan -detailed-exitcode`
    assert len(lines(pending)) == 4
    assert mlrelay(scheduler, registry_file, "schedules", "apply").exit_code == 0
    in_step = mlrelay(scheduler, registry_file, "schedules", "plan")
    assert in_step.exit_code == 0 and lines(in_step) == ["in step: nothing to change"]


def test_plan_json_is_the_list_of_changes_and_nothing_else_on_stdout(
    scheduler: FakeScheduler, registry_file: Path
) -> None:
    result = mlrelay(scheduler, registry_file, "-v", "schedules", "plan", "--json")
    assert result.exit_code == 2, result.output
    rows = json.loads(result.stdout)
    assert [(row["action"], row["job_id"]) for row in rows] == [
        ("create", "mlrelay_group_weekly-all_weekly"),
        ("create", "mlrelay_pipeline_churn_nightly"),
        ("create", "mlrelay_pipeline_churn_per-service"),
        ("create", "mlrelay_pipeline_fraud_default"),
    ]
    assert rows[1] == {
        "action": "create",
        "job_id": "mlrelay_pipeline_churn_nightly",
        "fields": [],
        "schedule": "30 2 * * *",
        "time_zone": "Europe/Amsterdam",
        "paused": False,
    }
    assert mlrelay(scheduler, registry_file, "schedules", "apply").exit_code == 0
    registry_file.write_text(REGISTRY.replace("  weekly-all:", "  weekly-every:"))
    edited = json.loads(mlrelay(scheduler, registry_file, "schedules", "plan", "--json").stdout)
    assert edited[-1] == {
        "action": "delete",
        "job_id": "mlrelay_group_weekly-all_weekly",
        "fields": [],
        "schedule": None,
        "time_zone": None,
        "paused": None,
    }
    registry_file.write_text(REGISTRY)
    in_step = mlrelay(scheduler, registry_file, "schedules", "plan", "--json")
    assert in_step.exit_code == 0 and json.loads(in_step.stdout) == []


def test_apply_logs_each_change_on_stderr_with_dash_v_and_only_then(
    scheduler: FakeScheduler, registry_file: Path
) -> None:
    quiet = mlrelay(scheduler, registry_file, "schedules", "apply")
    assert quiet.exit_code == 0 and quiet.stderr == ""
    registry_file.write_text(REGISTRY.replace("  weekly-all:", "  weekly-every:"))
    loud = mlrelay(scheduler, registry_file, "schedules", "apply", "-v")
    assert loud.exit_code == 0, loud.output
    assert "event='scheduler_job_changed'" in loud.stderr
    assert all(line.startswith("done: ") for line in loud.stdout.splitlines())


def test_a_usage_error_of_plan_exits_1_as_any_error_not_2(registry_file: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["schedules", "plan"],  # no --location, no MLRELAY_SCHEDULER_LOCATION
        env={"GOOGLE_CLOUD_PROJECT": PROJECT, "MLRELAY_REGISTRY": str(registry_file)},
    )
    assert result.exit_code == 1
    assert "Missing option '--location'" in result.stderr


# --- one owner per job: Terraform's jobs are reported and left alone ---


def terraform_made(scheduler: FakeScheduler, registry: str, *job_ids: str) -> None:
    """Jobs as the Terraform module makes them from `schedules export` (marker: terraform)."""
    jobs = jobs_client(scheduler)
    for job in desired_jobs(parse_registry(registry), TOPIC, owner="terraform"):
        if job.job_id in job_ids:
            jobs.create(job)


def writes_to(scheduler: FakeScheduler, job_id: str) -> list[str]:
    """The methods of the writes to one job (a create names it in its body)."""
    name = f"{PARENT}/jobs/{job_id}"
    return [
        r.method
        for r in scheduler.writes()
        if r.path.split(":")[0] == f"/v1/{name}" or (r.body or {}).get("name") == name
    ]


def test_apply_leaves_the_jobs_terraform_manages_alone_and_reports_them(
    scheduler: FakeScheduler, registry_file: Path
) -> None:
    terraform_made(scheduler, REGISTRY, "mlrelay_pipeline_churn_nightly")
    terraform_made(scheduler, REGISTRY.replace("fraud", "old"), "mlrelay_pipeline_old_default")
    registry_file.write_text(REGISTRY.replace('"30 2 * * *"', '"45 3 * * *"'))
    before = {name: dict(job) for name, job in scheduler.jobs.items()}

    result = mlrelay(scheduler, registry_file, "schedules", "apply")
    assert result.exit_code == 1
    assert "2 job(s) left alone: another owner manages them" in result.stderr
    held = [" ".join(line.split()) for line in result.stderr.splitlines() if "held" in line]
    assert held[:2] == [
        "held mlrelay_pipeline_churn_nightly (managed by Terraform; the registry differs: "
        "schedule, pubsub_target)",
        "held mlrelay_pipeline_old_default (managed by Terraform; the registry differs: delete)",
    ]
    assert "`mlrelay schedules export` and `terraform apply`" in result.stderr
    for name, job in before.items():  # neither updated nor deleted
        assert scheduler.jobs[name] == job
    assert writes_to(scheduler, "mlrelay_pipeline_churn_nightly") == ["POST"]  # Terraform's
    assert writes_to(scheduler, "mlrelay_pipeline_old_default") == ["POST"]
    # apply's own jobs are made, and updated on the next edit
    assert sorted(lines(result)) == [
        "done: create mlrelay_group_weekly-all_weekly [0 4 * * 0 Asia/Kolkata]",
        "done: create mlrelay_pipeline_churn_per-service [0 6 * * 1 America/New_York]",
        "done: create mlrelay_pipeline_fraud_default [0 * * * * UTC]",
    ]
    registry_file.write_text(REGISTRY.replace('"0 * * * *"', '"5 * * * *"'))
    edited = mlrelay(scheduler, registry_file, "schedules", "apply")
    assert lines(edited) == [
        "done: update mlrelay_pipeline_fraud_default (schedule, pubsub_target)"
    ]
    assert (
        scheduler.jobs[f"{PARENT}/jobs/mlrelay_pipeline_fraud_default"]["schedule"] == "5 * * * *"
    )
    assert writes_to(scheduler, "mlrelay_pipeline_churn_nightly") == ["POST"]


def test_plan_reports_terraform_jobs_in_step_and_changes_nothing_about_them(
    scheduler: FakeScheduler, registry_file: Path
) -> None:
    terraform_made(
        scheduler, REGISTRY, *(job.job_id for job in desired_jobs(parse_registry(REGISTRY), TOPIC))
    )
    result = mlrelay(scheduler, registry_file, "schedules", "plan")
    assert lines(result) == ["in step: nothing to change"]
    assert result.stderr.count("; in step with the registry)") == 4


def test_adopt_takes_terraforms_jobs_over_and_then_apply_owns_them(
    scheduler: FakeScheduler, registry_file: Path
) -> None:
    terraform_made(scheduler, REGISTRY, "mlrelay_pipeline_churn_nightly")
    adopted = mlrelay(scheduler, registry_file, "schedules", "apply", "--adopt")
    assert adopted.exit_code == 0, adopted.output
    assert "done: update mlrelay_pipeline_churn_nightly (description, pubsub_target)" in lines(
        adopted
    )
    job = scheduler.jobs[f"{PARENT}/jobs/mlrelay_pipeline_churn_nightly"]
    assert job["pubsubTarget"]["attributes"]["mlrelay_managed_by"] == "cli"
    again = mlrelay(scheduler, registry_file, "schedules", "apply")
    assert again.exit_code == 0 and lines(again) == ["in step: nothing to change"]


def test_jobs_from_before_the_marker_keep_their_owner_by_their_description(
    scheduler: FakeScheduler, registry_file: Path
) -> None:
    jobs = jobs_client(scheduler)
    for job in desired_jobs(load_registry(registry_file), TOPIC):
        unmarked = {k: v for k, v in job.attributes.items() if k != "mlrelay_managed_by"}
        if job.job_id == "mlrelay_pipeline_churn_nightly":  # the old export's wording
            description = job.description.replace("`mlrelay schedules apply`", "Terraform")
            jobs.create(replace(job, attributes=unmarked, description=description))
        else:
            jobs.create(replace(job, attributes=unmarked))
    result = mlrelay(scheduler, registry_file, "schedules", "plan")
    assert sorted(lines(result)) == [
        "update mlrelay_group_weekly-all_weekly (pubsub_target)",  # gains apply's marker
        "update mlrelay_pipeline_churn_per-service (pubsub_target)",
        "update mlrelay_pipeline_fraud_default (pubsub_target)",
    ]
    assert "held mlrelay_pipeline_churn_nightly (managed by Terraform" in " ".join(
        result.stderr.split()
    )


def test_a_job_terraform_made_after_the_plan_is_not_taken_over_on_409(
    scheduler: FakeScheduler, registry_file: Path
) -> None:
    jobs = jobs_client(scheduler)
    desired = desired_jobs(load_registry(registry_file), TOPIC)
    plan = plan_changes(desired, [])  # made before anything existed
    terraform_made(scheduler, REGISTRY, desired[0].job_id)
    done = apply_changes(jobs, plan)
    assert desired[0].job_id not in {change.job_id for change in done}
    assert writes_to(scheduler, desired[0].job_id) == ["POST", "POST"]  # Terraform's, our 409
    stored = scheduler.jobs[f"{PARENT}/jobs/{desired[0].job_id}"]
    assert stored["pubsubTarget"]["attributes"]["mlrelay_managed_by"] == "terraform"
