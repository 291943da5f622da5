"""Every Google API method mlrelay's deployed code calls, who calls it, and the role that allows it.

One row per (identity, call): the identity is a service's account (`trigger`, `snapshotter`,
`deployer`, `notifier`, `interactions`) or `pipelines`, the account Vertex AI pipeline jobs run
as. `grant_on`
names where Terraform grants the role (`project`, `bucket:snapshots`, `topic:lifecycle`, ...).

tests/unit/infra/test_cloud_permissions.py holds Terraform to this table: every row's role is
granted to that identity on that resource in infra/modules/mlrelay, every grant to a mlrelay
account is used by a row, and every Google client call in the deployed code has a row. So a new
call without its role fails the suite, and so does a removed grant. docs/deploy.md shows the
table as `python -m mlrelay_tools.cloud_permissions` renders it.
"""

from __future__ import annotations

from dataclasses import dataclass

# the services behind a subscription (each keeps its ledger in the bucket), and every service
STAGE_SERVICES = ("trigger", "snapshotter", "deployer", "notifier")
SERVICES = (*STAGE_SERVICES, "interactions")

GCS = "shared/mlrelay/adapters/gcs_store.py"
PUBSUB = "shared/mlrelay/adapters/pubsub_publisher.py"
BQ_JOBS = "services/snapshotter/mlrelay_snapshotter/bigquery_jobs.py"
BQ = "services/snapshotter/mlrelay_snapshotter/bigquery_warehouse.py"
BQ_READ = "services/snapshotter/mlrelay_snapshotter/storage_read.py"
VERTEX = "services/deployer/mlrelay_deployer/vertex_backend.py"
TEMPLATES = "services/deployer/mlrelay_deployer/template_source.py"
COMPLETION = "shared/mlrelay/kfp_components/completion.py"
KFP = "services/deployer/mlrelay_deployer/kfp_backend.py"
FUNCTIONS_TF = "infra/modules/mlrelay/functions.tf"

# Topics each service publishes to (lifecycle events; `rejected` ones come from every doorway).
PUBLISHES: dict[str, tuple[str, ...]] = {
    "trigger": ("snapshots", "deploys", "lifecycle"),  # deploys: a rerun on the same snapshot
    "snapshotter": ("deploys", "lifecycle"),
    "deployer": ("lifecycle", "runs", "commands"),  # the watchdog: backfills, stuck-run cancels
    "notifier": ("lifecycle",),
    "interactions": ("commands",),
}


@dataclass(frozen=True)
class GoogleCall:
    identity: str
    code: str  # the file that makes the call (repository path)
    client_call: str  # the client method (or REST host) called there; the file contains it
    api_method: str
    permission: str
    role: str | None  # None: deliberately not granted, `note` says why
    grant_on: str  # project | bucket:NAME | topic:NAME | dataset:NAME | secret:NAME | ...
    note: str = ""


def _object_calls(identity: str) -> list[GoogleCall]:
    """Ledger, claims, snapshots and records: every service's GcsStore on the snapshot bucket."""
    admin, on = "roles/storage.objectAdmin", "bucket:snapshots"
    rows = [
        ("download_as_bytes", "storage.objects.get", "storage.objects.get"),
        (
            "upload_from_string",
            "storage.objects.insert",
            "storage.objects.create, storage.objects.delete (overwrite)",
        ),
        ("delete", "storage.objects.delete", "storage.objects.delete"),
        ("list_blobs", "storage.objects.list", "storage.objects.list"),
    ]
    if identity == "snapshotter":  # Parquet footers read by range, streamed files uploaded
        rows.append(
            ("open", "storage.objects.get / resumable insert", "storage.objects.get, create")
        )
    return [GoogleCall(identity, GCS, call, api, perm, admin, on) for call, api, perm in rows]


def _publish_calls(identity: str) -> list[GoogleCall]:
    return [
        GoogleCall(
            identity,
            PUBSUB,
            "publish",
            "pubsub.projects.topics.publish",
            "pubsub.topics.publish",
            "roles/pubsub.publisher",
            f"topic:{topic}",
        )
        for topic in PUBLISHES[identity]
    ]


SNAPSHOTTER: tuple[GoogleCall, ...] = (
    GoogleCall(
        "snapshotter",
        BQ,
        "query",
        "bigquery.jobs.insert (query)",
        "bigquery.jobs.create",
        "roles/bigquery.jobUser",
        "project",
    ),
    GoogleCall(
        "snapshotter",
        BQ,
        "query",
        "bigquery.jobs.insert (reads the source)",
        "bigquery.tables.getData",
        "roles/bigquery.dataViewer",
        "dataset:sources",
    ),
    GoogleCall(
        "snapshotter",
        BQ,
        "query",
        "bigquery.jobs.insert (destination: a staging table)",
        "bigquery.tables.create, bigquery.tables.updateData",
        "roles/bigquery.dataEditor",
        "dataset:staging",
    ),
    GoogleCall(
        "snapshotter",
        BQ,
        "query",
        "bigquery.jobs.insert (the expectations' query reads the staging table)",
        "bigquery.tables.getData",
        "roles/bigquery.dataEditor",
        "dataset:staging",
    ),
    GoogleCall(
        "snapshotter",
        BQ_JOBS,
        "get_job",
        "bigquery.jobs.get",
        "bigquery.jobs.create (a job's creator reads it back)",
        "roles/bigquery.jobUser",
        "project",
    ),
    GoogleCall(
        "snapshotter",
        BQ_JOBS,
        "reload",
        "bigquery.jobs.get",
        "bigquery.jobs.create (a job's creator reads it back)",
        "roles/bigquery.jobUser",
        "project",
    ),
    GoogleCall(
        "snapshotter",
        BQ,
        "get_dataset",
        "bigquery.datasets.get",
        "bigquery.datasets.get",
        "roles/bigquery.dataEditor",
        "dataset:staging",
    ),
    GoogleCall(
        "snapshotter",
        BQ,
        "create_dataset",
        "bigquery.datasets.insert",
        "bigquery.datasets.create",
        None,
        "project",
        "not granted: Terraform creates the staging dataset, so only a missing one gets here",
    ),
    GoogleCall(
        "snapshotter",
        BQ,
        "get_table",
        "bigquery.tables.get",
        "bigquery.tables.get",
        "roles/bigquery.dataEditor",
        "dataset:staging",
    ),
    GoogleCall(
        "snapshotter",
        BQ,
        "extract_table",
        "bigquery.jobs.insert (extract)",
        "bigquery.jobs.create",
        "roles/bigquery.jobUser",
        "project",
    ),
    GoogleCall(
        "snapshotter",
        BQ,
        "extract_table",
        "bigquery.jobs.insert (extract)",
        "bigquery.tables.export",
        "roles/bigquery.dataEditor",
        "dataset:staging",
    ),
    GoogleCall(
        "snapshotter",
        BQ,
        "extract_table",
        "bigquery.jobs.insert (writes Parquet as the caller)",
        "storage.objects.create",
        "roles/storage.objectAdmin",
        "bucket:snapshots",
    ),
    GoogleCall(
        "snapshotter",
        BQ,
        "create_read_session",
        "bigquery.storage.v1.BigQueryRead.CreateReadSession (stream mode)",
        "bigquery.readsessions.create",
        "roles/bigquery.readSessionUser",
        "project",
    ),
    GoogleCall(
        "snapshotter",
        BQ,
        "create_read_session",
        "bigquery.storage.v1.BigQueryRead.CreateReadSession (stream mode)",
        "bigquery.tables.getData",
        "roles/bigquery.dataEditor",
        "dataset:staging",
    ),
    GoogleCall(
        "snapshotter",
        BQ_READ,
        "ReadRows",
        "bigquery.storage.v1.BigQueryRead.ReadRows (stream mode)",
        "bigquery.readsessions.getData",
        "roles/bigquery.readSessionUser",
        "project",
    ),
)

DEPLOYER: tuple[GoogleCall, ...] = (
    GoogleCall(
        "deployer",
        VERTEX,
        "create_pipeline_job",
        "aiplatform.projects.locations.pipelineJobs.create",
        "aiplatform.pipelineJobs.create",
        "roles/aiplatform.user",
        "project",
    ),
    GoogleCall(
        "deployer",
        VERTEX,
        "create_pipeline_job",
        "aiplatform.projects.locations.pipelineJobs.create (job runs as the pipelines account)",
        "iam.serviceAccounts.actAs",
        "roles/iam.serviceAccountUser",
        "service_account:pipelines",
    ),
    GoogleCall(
        "deployer",
        VERTEX,
        "cancel_pipeline_job",
        "aiplatform.projects.locations.pipelineJobs.cancel (a `cancel` command)",
        "aiplatform.pipelineJobs.cancel",
        "roles/aiplatform.user",
        "project",
    ),
    GoogleCall(
        "deployer",
        VERTEX,
        "get_pipeline_job",
        "aiplatform.projects.locations.pipelineJobs.get (the job's state after a cancel; the "
        "log relay mlrelay-job-events re-reads an ended job's labels and state: job_state)",
        "aiplatform.pipelineJobs.get",
        "roles/aiplatform.user",
        "project",
    ),
    GoogleCall(
        "deployer",
        TEMPLATES,
        "download_as_text",
        "storage.objects.get (a gs:// template)",
        "storage.objects.get",
        "roles/storage.objectViewer",
        "bucket:templates",
        "the buckets in var.template_buckets",
    ),
    GoogleCall(
        "deployer",
        TEMPLATES,
        "artifactregistry.googleapis.com",
        "artifactregistry.projects.locations.repositories.packages.tags.get, file download",
        "artifactregistry.tags.get, artifactregistry.repositories.downloadArtifacts",
        "roles/artifactregistry.reader",
        "repository:templates",
        "the repositories in var.template_repositories",
    ),
    GoogleCall(
        "deployer",
        FUNCTIONS_TF,
        "secret_environment_variables",
        "secretmanager.projects.secrets.versions.access (at start, by Cloud Run)",
        "secretmanager.versions.access",
        "roles/secretmanager.secretAccessor",
        "secret:kfp_tokens",
        "the KFP hosts' bearer tokens in var.kfp_token_secret_ids, if any",
    ),
    GoogleCall(
        "deployer",
        KFP,
        "client_id",
        "iamcredentials.projects.serviceAccounts.signBlob (kfp's IAP ID token, as itself)",
        "iam.serviceAccounts.signBlob",
        "roles/iam.serviceAccountTokenCreator",
        "service_account:deployer",
        "only with kfp_iap = true",
    ),
)

NOTIFIER: tuple[GoogleCall, ...] = (
    GoogleCall(
        "notifier",
        FUNCTIONS_TF,
        "secret_environment_variables",
        "secretmanager.projects.secrets.versions.access (at start, by Cloud Run)",
        "secretmanager.versions.access",
        "roles/secretmanager.secretAccessor",
        "secret:slack",
        "the Slack webhook or bot token secret",
    ),
)

# The public door reads the ledger and the run history, and writes only its command claims.
_INTERACTIONS_OBJECTS = (
    ("download_as_bytes", "storage.objects.get", "storage.objects.get", "bucket:snapshots"),
    ("list_blobs", "storage.objects.list", "storage.objects.list", "bucket:snapshots"),
)
_INTERACTIONS_CLAIMS = (
    (
        "upload_from_string",
        "storage.objects.insert (a command claim)",
        "storage.objects.create, storage.objects.delete (overwrite)",
    ),
    ("delete", "storage.objects.delete (a released claim)", "storage.objects.delete"),
    ("download_as_bytes", "storage.objects.get (a command claim)", "storage.objects.get"),
)
INTERACTIONS: tuple[GoogleCall, ...] = (
    *(
        GoogleCall("interactions", GCS, call, api, perm, "roles/storage.objectViewer", on)
        for call, api, perm, on in _INTERACTIONS_OBJECTS
    ),
    *(
        GoogleCall(
            "interactions",
            GCS,
            call,
            api,
            perm,
            "roles/storage.objectAdmin",
            "bucket:snapshots/commands/",
            "an IAM condition on the `commands/` prefix",
        )
        for call, api, perm in _INTERACTIONS_CLAIMS
    ),
    GoogleCall(
        "interactions",
        FUNCTIONS_TF,
        "secret_environment_variables",
        "secretmanager.projects.secrets.versions.access (at start, by Cloud Run)",
        "secretmanager.versions.access",
        "roles/secretmanager.secretAccessor",
        "secret:interactions",
        "the Slack signing secret (and the bot token, for user groups)",
    ),
)

PIPELINES: tuple[GoogleCall, ...] = (
    GoogleCall(
        "pipelines",
        COMPLETION,
        "pubsub.googleapis.com",
        "pubsub.projects.topics.publish (the exit handler's completion report)",
        "pubsub.topics.publish",
        "roles/pubsub.publisher",
        "topic:lifecycle",
    ),
    GoogleCall(
        "pipelines",
        VERTEX,
        "gcs_output_directory",
        "storage.objects.* (pipeline root artifacts, snapshot reads)",
        "storage.objects.create, get, list",
        "roles/storage.objectAdmin",
        "bucket:snapshots",
    ),
)

CALLS: tuple[GoogleCall, ...] = (
    *(row for service in STAGE_SERVICES for row in _object_calls(service)),
    *(row for service in SERVICES for row in _publish_calls(service)),
    *SNAPSHOTTER,
    *DEPLOYER,
    *NOTIFIER,
    *INTERACTIONS,
    *PIPELINES,
)


def markdown() -> str:
    """The table as docs/deploy.md shows it: one line per (API method, permission, role,
    resource), with the accounts that need it."""
    accounts: dict[tuple[str, str, str | None, str, str], list[str]] = {}
    for row in CALLS:
        key = (row.api_method, row.permission, row.role, row.grant_on, row.note)
        if row.identity not in accounts.setdefault(key, []):
            accounts[key].append(row.identity)
    lines = [
        "| accounts | API method | permission | role | granted on |",
        "|---|---|---|---|---|",
    ]
    for (api_method, permission, role, grant_on, note), identities in accounts.items():
        shown_role = f"`{role}`" if role else "none"
        on = grant_on + (f" ({note})" if note else "")
        lines.append(
            f"| {', '.join(identities)} | {api_method} | `{permission}` | {shown_role} | {on} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
