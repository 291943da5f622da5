"""The Google API calls of the deployed code (mlrelay_tools.cloud_permissions) and the grants in
infra/modules/mlrelay agree: each call's role is granted to its account on its resource, each
grant to a mlrelay account is used, and each Google client call in the code has a row."""

from __future__ import annotations

import ast
import functools
import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlrelay_tools.cloud_permissions import CALLS, PUBLISHES, SERVICES, STAGE_SERVICES, markdown
from tests.helpers import REPO
from tests.unit.infra.terraform_files import module_locals, module_resources

IDENTITIES = {*SERVICES, "pipelines"}

# Client methods that build a reference or wait on a local future: no request to Google.
NO_REQUEST = frozenset({"blob", "bucket", "topic_path", "result", "dataset", "table"})


@dataclass(frozen=True)
class Grant:
    identity: str
    role: str
    on: str


# resource type -> (the attribute naming the resource, {expression: grant_on})
SCOPES: dict[str, tuple[str | None, dict[str, str]]] = {
    "google_project_iam_member": (None, {}),
    "google_storage_bucket_iam_member": (
        "bucket",
        {
            "${google_storage_bucket.snapshots.name}": "bucket:snapshots",
            "${each.value}|${toset(var.template_buckets)}": "bucket:templates",
        },
    ),
    "google_bigquery_dataset_iam_member": (
        "dataset_id",
        {
            "${google_bigquery_dataset.staging.dataset_id}": "dataset:staging",
            "*|${toset(var.source_datasets)}": "dataset:sources",
        },
    ),
    "google_secret_manager_secret_iam_member": (
        "secret_id",
        {
            '${each.value}|${local.service_secrets["notifier"]}': "secret:slack",
            '${each.value}|${local.service_secrets["deployer"]}': "secret:kfp_tokens",
            '${each.value}|${local.service_secrets["interactions"]}': "secret:interactions",
        },
    ),
    "google_service_account_iam_member": (
        "service_account_id",
        {
            "${google_service_account.pipelines.name}": "service_account:pipelines",
            "${google_service_account.pusher.name}": "service_account:pusher",
            '${google_service_account.function["deployer"].name}': "service_account:deployer",
        },
    ),
    "google_artifact_registry_repository_iam_member": (
        "repository",
        {"*|${toset(var.template_repositories)}": "repository:templates"},
    ),
}


def scope_of(kind: str, name: str, body: dict[str, Any]) -> str:
    if kind == "google_project_iam_member":
        assert body["project"] == "${var.project_id}", (kind, name)
        return "project"
    if kind == "google_pubsub_topic_iam_member":
        topic = re.fullmatch(r'\$\{google_pubsub_topic\.this\["(\w+)"\]\.name\}', body["topic"])
        assert topic, f"{kind}.{name}: teach this test what topic = {body['topic']} names"
        return f"topic:{topic[1]}"
    attribute, known = SCOPES[kind]
    assert attribute is not None
    value, for_each = body[attribute], body.get("for_each", "")
    for expression, on in known.items():
        wanted, _, wanted_for_each = expression.partition("|")
        if wanted_for_each and for_each != wanted_for_each:
            continue
        if wanted in ("*", value):
            return on + _object_prefix(kind, name, body)
    raise AssertionError(f"{kind}.{name}: teach this test what {attribute} = {value} names")


def _object_prefix(kind: str, name: str, body: dict[str, Any]) -> str:
    """A bucket grant limited by an IAM condition to one object prefix: `/<prefix>/`."""
    conditions = body.get("condition") or []
    if not conditions:
        return ""
    (condition,) = conditions
    prefix = re.fullmatch(
        r'resource\.name\.startsWith\("projects/_/buckets/\$\{[\w.]+\}/objects/([\w-]+)/"\)',
        condition["expression"].replace('\\"', '"'),
    )
    assert prefix, f"{kind}.{name}: teach this test what condition {condition} names"
    return f"/{prefix[1]}/"


def grants_in_terraform() -> dict[Grant, str]:
    """Every grant of a role to a mlrelay account (a service's or the pipelines account), with
    the resource that makes it."""
    grants: dict[Grant, str] = {}
    for kind, name, body in module_resources():
        if not kind.endswith("_iam_member"):
            continue
        member, role, where = body["member"], body["role"], f"{kind}.{name}"
        if member == "serviceAccount:${google_service_account.pipelines.email}":
            grants[Grant("pipelines", role, scope_of(kind, name, body))] = where
        elif match := re.fullmatch(r'\$\{local\.sa\["(\w+)"\]\}', member):
            grants[Grant(match[1], role, scope_of(kind, name, body))] = where
        elif member == "${local.sa[each.value]}":
            assert body["for_each"] == "${local.stage_services}", where
            for service in STAGE_SERVICES:
                grants[Grant(service, role, scope_of(kind, name, body))] = where
        elif member == "${local.sa[each.value.service]}":  # the publish grants, per topic
            assert body["for_each"] == "${local.publish_grants}", where
            assert body["topic"] == "${google_pubsub_topic.this[each.value.topic].name}", where
            for service, topics in module_locals()["publishes"].items():
                for topic in topics:
                    grants[Grant(service, role, f"topic:{topic}")] = where
        elif "local.sa" in member:
            raise AssertionError(f"{where}: teach this test what member = {member} names")
    return grants


def test_every_google_call_has_its_role_granted_to_its_account_in_terraform() -> None:
    grants = grants_in_terraform()
    missing = [
        (row.identity, row.client_call, row.permission, row.role, row.grant_on)
        for row in CALLS
        if row.role is not None and Grant(row.identity, row.role, row.grant_on) not in grants
    ]
    assert missing == [], "grant these in infra/modules/mlrelay/iam.tf"


def test_every_grant_to_a_mlrelay_account_is_used_by_a_call() -> None:
    used = {Grant(row.identity, row.role, row.grant_on) for row in CALLS if row.role}
    unused = {grant: where for grant, where in grants_in_terraform().items() if grant not in used}
    assert unused == {}, "least privilege: drop the grant or add the call it allows"


def test_stream_mode_can_open_read_sessions() -> None:
    """The grant whose absence made stream mode fail with 403 on a real project."""
    assert Grant("snapshotter", "roles/bigquery.readSessionUser", "project") in (
        grants_in_terraform()
    )


def test_the_deployer_may_act_as_the_pipelines_account_only() -> None:
    grants = grants_in_terraform()
    acts_as = {g for g in grants if g.role == "roles/iam.serviceAccountUser"}
    assert acts_as == {
        Grant("deployer", "roles/iam.serviceAccountUser", "service_account:pipelines")
    }


def test_rows_are_well_formed() -> None:
    for row in CALLS:
        assert row.identity in IDENTITIES, row
        assert row.role is not None or row.note, f"{row}: say why it is not granted"
        text = (REPO / row.code).read_text()
        assert row.client_call in text, f"{row.code} makes no call {row.client_call}"
        service = re.match(r"services/(\w+)/", row.code)
        if service and row.identity in SERVICES:  # (the pipelines account's rows may live
            assert row.identity == service[1], row  # where the deployer configures its job)
    assert set(PUBLISHES) == set(SERVICES)
    assert {k: tuple(v) for k, v in module_locals()["publishes"].items()} == PUBLISHES


# The Google client libraries the deployed code uses, and the files of their client classes. Read
# as source, not imported: importing them costs seconds and probes the network stack.
CLIENT_SOURCES = {
    "google.cloud.bigquery": ("client.py", "job/base.py", "job/query.py", "job/extract.py"),
    "google.cloud.storage": ("client.py", "bucket.py", "blob.py"),
    "google.cloud.pubsub_v1": ("publisher/client.py",),
    "google.cloud.bigquery_storage_v1": ("client.py", "services/big_query_read/client.py"),
    "google.cloud.aiplatform_v1": ("services/pipeline_service/client.py",),
}


@functools.cache
def google_client_methods() -> frozenset[str]:
    """Public methods of those clients, less the names every Python container also has."""
    names: set[str] = set()
    for package, files in CLIENT_SOURCES.items():
        spec = importlib.util.find_spec(package)
        assert spec is not None and spec.submodule_search_locations, package
        root = Path(next(iter(spec.submodule_search_locations)))
        for name in files:
            tree = ast.parse((root / name).read_text())
            for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
                names |= {
                    f.name
                    for f in cls.body
                    if isinstance(f, ast.FunctionDef) and not f.name.startswith("_")
                }
    generic = {n for t in (object, dict, list, str, bytes, set) for n in dir(t)}
    return frozenset(names - generic - NO_REQUEST)


def google_calls_in(path: Path, methods: frozenset[str]) -> set[str]:
    """Client methods called in a file that imports google.*, REST hosts of Google APIs and
    gRPC method paths in any file."""
    tree = ast.parse(path.read_text())
    talks_to_google = any(
        (isinstance(node, ast.ImportFrom) and (node.module or "").startswith("google."))
        or (isinstance(node, ast.Import) and any(a.name.startswith("google.") for a in node.names))
        for node in ast.walk(tree)
    )
    found = set()
    for node in ast.walk(tree):
        if (
            talks_to_google
            and isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in methods
        ):
            found.add(node.func.attr)
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if host := re.match(r"https://([a-z]+\.googleapis\.com)/(?!auth/)", node.value):
                found.add(host[1])
            if grpc := re.fullmatch(r"/google\.[\w.]+/(\w+)", node.value):
                found.add(grpc[1])
    return found


def test_every_google_client_call_in_the_deployed_code_has_a_row() -> None:
    methods = google_client_methods()
    files = [*(REPO / "shared" / "mlrelay").rglob("*.py")]
    files += [*(REPO / "services").glob("*/mlrelay_*/*.py")]
    in_table = {(row.code, row.client_call) for row in CALLS}
    missing = sorted(
        (str(path.relative_to(REPO)), call)
        for path in files
        for call in google_calls_in(path, methods)
        if (str(path.relative_to(REPO)), call) not in in_table
    )
    assert missing == [], (
        "add each call, its permission and role to mlrelay_tools.cloud_permissions"
    )


def test_the_scan_sees_the_calls_the_table_lists() -> None:
    """The scan is not blind: it finds the table's client calls in their files."""
    methods = google_client_methods()
    for row in CALLS:
        # not client calls of ours: Vertex AI writes the pipeline root, kfp signs for IAP
        if row.code.endswith(".py") and row.client_call not in (
            "gcs_output_directory",
            "client_id",
        ):
            assert row.client_call in google_calls_in(REPO / row.code, methods), row


def test_deploy_docs_show_the_table() -> None:
    assert markdown() in (REPO / "docs" / "deploy.md").read_text(), (
        "paste `python -m mlrelay_tools.cloud_permissions` into docs/deploy.md"
    )
