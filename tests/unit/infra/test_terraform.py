"""Static checks of infra/ (terraform cannot reach its provider registry here): every .tf file
parses, and names agree between code and Terraform. checkov and Cloud Build's scripts are
checked in tests/integration/infra/."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest

from mlrelay.config.deployer import KFP_TOKEN_PREFIX
from mlrelay.config.env import env_vars
from mlrelay.config.functions import FUNCTIONS, HTTP_FUNCTIONS
from mlrelay.config.settings import SECTIONS
from mlrelay.config.topics import DEFAULT_TOPICS
from mlrelay_tools.packaging import SERVICES
from tests.helpers import REGISTRY
from tests.unit.infra.terraform_files import (
    INFRA,
    MODULE,
    TF_FILES,
    load_tf,
    module_locals,
    module_resources,
    module_variables,
)


@pytest.mark.parametrize("path", TF_FILES, ids=lambda p: str(p.relative_to(INFRA)))
def test_every_terraform_file_parses(path: Path) -> None:
    assert load_tf(path)


def test_module_and_environments_exist() -> None:
    assert {p.parent.name for p in TF_FILES} >= {"mlrelay", "dev", "prod"}


def test_topic_names_agree_between_code_and_terraform() -> None:
    assert module_variables()["topic_names"]["default"] == DEFAULT_TOPICS


def test_functions_agree_between_code_and_terraform() -> None:
    specs = module_locals()["function_specs"]
    assert set(specs) == {f.name for f in FUNCTIONS}
    for function in FUNCTIONS:
        spec = specs[function.name]
        assert spec["service"] == function.service_dir
        assert spec["entry_point"] == function.entry_point
        assert spec["topic"] == function.topic
        assert spec["dead_letters"] == function.dead_letters_to_topic
        written = spec["filter"].replace('\\"', '"') if spec["filter"] else None  # HCL escapes
        assert written == (function.only.expression() if function.only else None)
    assert set(module_locals()["publishes"]) == set(SERVICES)


def test_terraform_sets_only_env_vars_the_settings_read() -> None:
    read = {
        var.name for section in SECTIONS for _, var in env_vars(section) if var.name is not None
    }
    env = set(module_locals()["common_env"])
    for service_env in module_locals()["service_env"].values():
        env |= set(service_env)
    env |= {"SLACK_WEBHOOK_URL", "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET"}
    env.discard("MLRELAY_SERVICE")  # a label for logs and dashboards, read by nobody
    assert env <= read, env - read
    locals_tf = (MODULE / "locals.tf").read_text()
    assert "{ SLACK_WEBHOOK_URL = var.slack_webhook_secret_id }" in locals_tf
    assert "{ SLACK_BOT_TOKEN = var.slack_bot_token_secret_id }" in locals_tf
    assert "{ SLACK_SIGNING_SECRET = var.slack_signing_secret_id }" in locals_tf


def test_function_packages_in_terraform_are_the_ones_mlrelay_package_builds() -> None:
    bucket_tf = (MODULE / "bucket.tf").read_text()
    assert '"${var.package_dir}/${each.value}.zip"' in bucket_tf
    assert set(module_locals()["publishes"]) == set(SERVICES)


def test_terraform_schedules_come_from_the_same_export_as_schedules_apply(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from mlrelay.registry import load_registry
    from mlrelay_tools.cli.main import cli
    from mlrelay_tools.schedules.jobs import desired_jobs

    out = tmp_path / "schedules.json"
    result = CliRunner().invoke(
        cli, ["schedules", "export", "--registry", str(REGISTRY), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    exported = json.loads(out.read_text())
    desired = desired_jobs(load_registry(REGISTRY), "t")
    assert [job["job_id"] for job in exported] == [job.job_id for job in desired]
    assert {job["data"] for job in exported} == {
        base64.b64encode(job.data).decode() for job in desired
    }
    scheduler_tf = (MODULE / "scheduler.tf").read_text()
    for key in ("description", "schedule", "time_zone", "paused", "data", "attributes"):
        assert f"each.value.{key}" in scheduler_tf
    # Terraform's jobs say so, in the marker `schedules apply` reads: it leaves them alone
    assert {job["attributes"]["mlrelay_managed_by"] for job in exported} == {"terraform"}
    assert all("managed by Terraform" in job["description"] for job in exported)
    assert 'merge(each.value.attributes, { mlrelay_managed_by = "terraform" })' in scheduler_tf
    assert "job.job_id => job" in (MODULE / "locals.tf").read_text()


def test_notifier_runs_as_one_instance_serving_several_requests() -> None:
    """Slack pacing holds across all posts only in one process (docs/notifications.md)."""
    specs = module_locals()["function_specs"]
    notifier = [f.name for f in FUNCTIONS if f.service_dir == "notifier"]
    assert len(notifier) == 2
    for name in notifier:
        assert specs[name]["max_instances"] == 1, name
        assert specs[name]["concurrency"] > 1, name
    for name, spec in specs.items():  # Cloud Run functions: concurrency > 1 needs a whole CPU
        if spec["concurrency"] > 1:
            assert spec["cpu"] is not None and float(spec["cpu"]) >= 1, name
    functions_tf = (MODULE / "functions.tf").read_text()
    for attribute, key in (
        ("available_cpu", "cpu"),
        ("max_instance_request_concurrency", "concurrency"),
        ("max_instance_count", "max_instances"),
    ):
        assert re.search(rf"{attribute}\s*=\s*each\.value\.{key}\n", functions_tf), attribute
        assert f"{key} = try(coalesce(var.functions[name].{key}), spec.{key})" in " ".join(
            (MODULE / "locals.tf").read_text().split()
        ), key
    overridable = module_variables()["functions"]["type"]
    for key in ("memory", "cpu", "timeout_seconds", "max_instances", "concurrency"):
        assert f"{key}=optional(" in overridable.replace(" ", ""), key


def test_customer_managed_keys_one_per_location_with_each_agent_on_its_data_location() -> None:
    kms = load_tf(MODULE / "kms.tf")
    kms_locals = kms["locals"][0]
    region, bigquery = "${local.kms_region_location}", "${local.kms_bigquery_location}"
    assert kms_locals["kms_region_location"] == "${lower(var.region)}"
    assert 'eu = "europe"' in kms_locals["kms_bigquery_location"]  # BigQuery EU -> KMS europe
    assert "var.bigquery_location" in kms_locals["kms_bigquery_location"]
    assert "[local.kms_region_location, local.kms_bigquery_location]" in kms_locals["kms_locations"]
    assert "data[local.kms_region_location]" in kms_locals["kms_key_region"]
    assert "data[local.kms_bigquery_location]" in kms_locals["kms_key_bigquery"]
    agents = kms_locals["kms_agents"]
    assert {agent: grant["location"] for agent, grant in agents.items()} == {
        "storage": region,
        "pubsub": region,
        "bigquery": bigquery,
    }
    assert "google_storage_project_service_account" in agents["storage"]["member"]
    assert agents["pubsub"]["member"] == "${local.pubsub_agent}"
    assert "google_bigquery_default_service_account" in agents["bigquery"]["member"]

    resources = module_resources()
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for kind, _, body in resources:
        by_kind.setdefault(kind, []).append(body)
    for kind in ("google_kms_key_ring", "google_kms_crypto_key"):
        assert [body["for_each"] for body in by_kind[kind]] == ["${local.kms_locations}"]
    (key,) = by_kind["google_kms_crypto_key"]
    assert int(key["rotation_period"].removesuffix("s")) <= 90 * 24 * 3600
    (grant,) = by_kind["google_kms_crypto_key_iam_member"]
    assert grant["role"] == "roles/cloudkms.cryptoKeyEncrypterDecrypter"
    assert grant["crypto_key_id"] == "${google_kms_crypto_key.data[each.value.location].id}"
    assert "local.kms_agents" in grant["for_each"] and "var.cmek" in grant["for_each"]

    agents_first = ["${google_kms_crypto_key_iam_member.agents}"]
    for body in by_kind["google_storage_bucket"]:  # in the region, with the region's key
        assert body["location"] == "${var.region}"
        (encryption,) = body["dynamic"]
        assert "local.kms_key_region" in encryption["encryption"]["for_each"]
        assert body["depends_on"] == agents_first
    for body in by_kind["google_pubsub_topic"]:
        assert body["kms_key_name"] == "${local.kms_key_region}"
        assert body["depends_on"] == agents_first
    (dataset,) = by_kind["google_bigquery_dataset"]
    assert dataset["location"] == "${var.bigquery_location}"
    (encryption,) = dataset["dynamic"]
    assert "local.kms_key_bigquery" in encryption["default_encryption_configuration"]["for_each"]
    assert dataset["depends_on"] == agents_first
    for kind, name, body in resources:  # no key chosen anywhere else
        assert "kms_key_name = var." not in str(body), (kind, name)


def test_kfp_token_secrets_reach_the_deployer_as_the_variables_it_reads() -> None:
    deployer_secrets = module_locals()["service_secrets"]["deployer"]
    assert f'"{KFP_TOKEN_PREFIX}${{upper(name)}}" => secret' in deployer_secrets
    assert "var.kfp_token_secret_ids" in deployer_secrets
    grants = {
        name: grant
        for block in load_tf(MODULE / "iam.tf")["resource"]
        for name, grant in block.get("google_secret_manager_secret_iam_member", {}).items()
    }
    reads = grants["deployer_reads_kfp_tokens"]
    assert reads["for_each"] == '${local.service_secrets["deployer"]}'
    assert (reads["role"], reads["member"]) == (
        "roles/secretmanager.secretAccessor",
        '${local.sa["deployer"]}',
    )
    assert module_variables()["kfp_token_secret_ids"]["default"] == {}


def test_the_interactions_function_is_the_only_public_one() -> None:
    """HTTP_FUNCTIONS agree with Terraform; public ingress and the allUsers invoker belong to the
    interactions function alone, deployed only with a signing secret."""
    (spec,) = HTTP_FUNCTIONS
    resources = module_resources()
    functions = {
        name: body for kind, name, body in resources if kind == "google_cloudfunctions2_function"
    }
    interactions = functions["interactions"]
    assert interactions["name"] == spec.name
    assert interactions["count"] == "${var.slack_signing_secret_id == null ? 0 : 1}"
    (build,) = interactions["build_config"]
    assert build["entry_point"] == spec.entry_point
    assert f'package["{spec.service_dir}"]' in str(build["source"])
    ingress = {
        name: body["service_config"][0]["ingress_settings"] for name, body in functions.items()
    }
    assert ingress == {"this": "ALLOW_INTERNAL_ONLY", "interactions": "ALLOW_ALL"}
    public = [
        (kind, name)
        for kind, name, body in resources
        if kind.endswith("_iam_member") and body["member"] in ("allUsers", "allAuthenticatedUsers")
    ]
    assert public == [("google_cloud_run_v2_service_iam_member", "public_invokes_interactions")]
    assert {k: tuple(v) for k, v in module_locals()["publishes"].items()}[spec.service_dir] == (
        spec.publishes
    )
    secrets = module_locals()["service_secrets"]["interactions"]
    assert "SLACK_SIGNING_SECRET = var.slack_signing_secret_id" in secrets


def test_the_log_sink_feeds_the_relay_terminal_pipeline_job_states_only() -> None:
    from mlrelay_deployer.job_events import PIPELINE_JOB

    sinks = {
        name: body
        for kind, name, body in module_resources()
        if kind == "google_logging_project_sink"
    }
    sink = sinks["pipeline_job_events"]
    assert sink["destination"] == (
        'pubsub.googleapis.com/${google_pubsub_topic.this["pipeline_job_events"].id}'
    )
    lines = [line.strip() for line in sink["filter"].strip().splitlines()]
    assert f'resource.type="{PIPELINE_JOB}"' in lines
    assert any(line.startswith("logName=") and "pipeline_job_events" in line for line in lines)
    states = re.findall(r'jsonPayload\.state="(\w+)"', sink["filter"])
    assert sorted(states) == [
        "PIPELINE_STATE_CANCELLED",
        "PIPELINE_STATE_FAILED",
        "PIPELINE_STATE_SUCCEEDED",
    ]
    relay = next(f for f in FUNCTIONS if f.entry_point == "on_pipeline_job_event")
    assert relay.topic == "pipeline_job_events" and relay.dead_letters_to_topic
    assert module_locals()["function_specs"][relay.name]["topic"] == "pipeline_job_events"
    assert "MLRELAY_TOPIC_PIPELINE_JOB_EVENTS" in module_locals()["common_env"]


def test_a_second_sink_feeds_the_relay_the_service_lines_of_custom_jobs() -> None:
    from mlrelay_deployer.custom_job_events import ML_JOB, SERVICE_TASK

    resources = module_resources()
    sinks = {name: body for kind, name, body in resources if kind == "google_logging_project_sink"}
    sink = sinks["custom_job_events"]
    assert sink["destination"] == sinks["pipeline_job_events"]["destination"]  # the relay's topic
    lines = [line.strip() for line in sink["filter"].strip().splitlines()]
    terms = [line for line in lines if "EOT" not in line]
    assert terms == [f'resource.type="{ML_JOB}"', f'resource.labels.task_name="{SERVICE_TASK}"']
    publishers = {
        body["member"]
        for kind, _, body in resources
        if kind == "google_pubsub_topic_iam_member" and body["role"] == "roles/pubsub.publisher"
    }
    assert "${google_logging_project_sink.custom_job_events.writer_identity}" in publishers
