"""Kubeflow Pipelines on a host the team runs itself, through `kfp.Client(host)`.

Per deploy: get-or-upload the pipeline (named as in the registry), get-or-upload the version
named after the template's digest (one version per distinct template), get-or-create the
experiment, then start the run named after the run id, or create the recurring run named after it
and delete the ones it replaces. Every step looks its object up by name first, so a redelivered
DeployRequest creates nothing twice.

Credentials (`client_arguments`): a registry `kfp.token` is sent as a bearer token, a
`kfp.client_id` makes kfp fetch an IAP ID token, and with neither kfp sends a Google access token
to an AI Platform Pipelines host by itself. A host that refuses them (401/403) is our
misconfiguration: `ConfigurationError`, so the message is redelivered once it is fixed.
"""

from __future__ import annotations

import json
import re
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping
from datetime import datetime
from functools import cache, partial
from pathlib import Path
from typing import Any, TypeVar

import structlog

from mlrelay.config.deployer import kfp_token_variable
from mlrelay.config.env import Secret
from mlrelay.errors import ConfigurationError, PermanentError, TransientError
from mlrelay.ports.protocols import JobState, PipelineOutcome
from mlrelay.registry.backends import KfpOptions
from mlrelay_deployer.template_source import PipelineTemplate, load_template, with_caching

log = structlog.get_logger()
KFP_CANCELLED = ("CANCELING", "CANCELED")
KFP_FINISHED = ("SUCCEEDED", "FAILED", "SKIPPED", *KFP_CANCELLED)
T = TypeVar("T")
# a KFP run's state -> mlrelay's word (CANCELING is not an end yet; SKIPPED ran nothing: done)
KFP_STATUS: dict[str, Any] = {
    "RUNTIME_STATE_UNSPECIFIED": "pending",
    "PENDING": "pending",
    "RUNNING": "running",
    "PAUSED": "running",
    "CANCELING": "running",
    "SUCCEEDED": "succeeded",
    "SKIPPED": "succeeded",
    "FAILED": "failed",
    "CANCELED": "cancelled",
}
ATTEMPTS = 3
# kfp.Client sends such a host (AI Platform Pipelines' inverse proxy) a Google access token itself
INVERSE_PROXY_HOST = re.compile(r"^\S+\.googleusercontent\.com/?$")


def version_name(template: PipelineTemplate) -> str:
    """The version a template becomes: its release tag when it has one, else its digest."""
    ref = template.pinned_uri.rsplit("/", 1)[-1] if template.registry_uri else ""
    tag = template.location.rsplit("/", 1)[-1] if template.registry_uri else ""
    if tag and not tag.startswith("sha256:"):
        return tag
    if ref.startswith("sha256:"):
        return "sha256-" + ref.removeprefix("sha256:")[:16]
    return "sha256-" + template.sha256[:16]


def by_name(name: str) -> str:
    return json.dumps(
        {"predicates": [{"operation": "EQUALS", "key": "display_name", "stringValue": name}]}
    )


def client_arguments(options: KfpOptions, tokens: Mapping[str, Secret]) -> dict[str, Any]:
    """`kfp.Client`'s keyword arguments for the host: `existing_token` for a registry
    `kfp.token` (its value from `tokens`, the deployer's `MLRELAY_KFP_TOKEN_<NAME>`), `client_id`
    for IAP; with neither, kfp decides (a Google access token for an inverse-proxy host only)."""
    arguments: dict[str, Any] = {"host": options.host, "namespace": options.namespace or "kubeflow"}
    if options.client_id:
        arguments["client_id"] = options.client_id
    if options.token:
        token = tokens.get(options.token)
        if not token:
            variable = kfp_token_variable(options.token)
            raise ConfigurationError(
                variable,
                f"is not set, and the registry's `kfp.token: {options.token}` names it",
                f"give the deployer that secret (Terraform: kfp_token_secret_ids = "
                f'{{ {options.token} = "<secret id>" }}) or set {variable}',
            )
        arguments["existing_token"] = token.value
    return arguments


@cache
def kfp_client_class() -> type[Any]:
    """`kfp.Client` with a health check of one attempt. kfp's own tries 5 times, 5 s apart,
    whatever the answer (a 401 too), inside `kfp.Client()`, then raises a bare TimeoutError;
    `KfpHostBackend._call` retries what is worth retrying and explains the rest."""
    import kfp

    class Client(kfp.Client):  # type: ignore[misc]
        def get_kfp_healthz(self, sleep_duration: int = 5) -> Any:
            return self._healthz_api.healthz_service_get_healthz()

    return Client


class KfpHostBackend:
    def __init__(
        self,
        options: KfpOptions,
        lifecycle_topic: str,
        *,
        tokens: Mapping[str, Secret] | None = None,
        backoff_seconds: float = 1.0,
        request_timeout_seconds: float = 30.0,
    ) -> None:
        self.options = options
        self.lifecycle_topic = lifecycle_topic
        self.backoff_seconds = backoff_seconds
        self.request_timeout_seconds = request_timeout_seconds
        self._tokens = tokens or {}
        client_arguments(options, self._tokens)  # a missing token stops here, before any call
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:

            def connect() -> Any:
                with warnings.catch_warnings():  # "only works with KFP v2.0.0-beta.2 and later"
                    warnings.simplefilter("ignore", FutureWarning)
                    client = kfp_client_class()(**client_arguments(self.options, self._tokens))
                bound_requests(client, self.request_timeout_seconds)
                return client

            self._client = self._call("connect", connect)
        return self._client

    @property
    def _namespace(self) -> str:
        return self.options.namespace or "kubeflow"

    def completion_destination(self, run_id: str) -> str:
        return self.lifecycle_topic

    def _call(
        self, what: str, call: Callable[[], T], *, found: Callable[[], T | None] | None = None
    ) -> T:
        """Retry 429/5xx, timeouts and connection errors a few times, then ask for redelivery;
        a refusal of our credentials (401/403, or Google refusing kfp a token) is our
        configuration (redelivery once fixed); any other answer is permanent and carries the
        host's message.

        `found` (for a create) looks the object up by name: a create that failed that way, or
        was refused as a duplicate (409), may have been made before its answer was lost, so it
        is looked for before being tried again."""
        import google.auth.exceptions
        import urllib3
        from kfp_server_api.exceptions import ApiException

        for attempt in range(1, ATTEMPTS + 1):
            if attempt > 1 and found is not None:
                existing = self._call(f"look up what failed to {what}", found)
                if existing is not None:
                    log.info("kfp_create_found_after_failure", what=what, attempts=attempt - 1)
                    return existing
            try:
                return call()
            except ApiException as exc:
                status = exc.status or 0
                if status == 409 and found is not None and attempt < ATTEMPTS:
                    continue  # look it up
                if status == 401 and self._google_token_may_have_expired(attempt):
                    self._client = None  # the next call connects again: kfp fetches a new one
                    log.info("kfp_token_renewed", what=what)
                    continue
                if status in (401, 403):
                    raise refused_credentials(self.options, what, status, _message(exc)) from None
                if status != 429 and status < 500:
                    raise PermanentError(
                        "kfp",
                        f"the KFP host refused to {what}: {status} {_message(exc)}",
                        "check the registry's `kfp:` options and the template",
                    ) from None
                if attempt == ATTEMPTS:
                    raise TransientError(f"KFP {what}: {status} {_message(exc)}") from exc
            except (urllib3.exceptions.HTTPError, TimeoutError) as exc:
                if attempt == ATTEMPTS:
                    raise TransientError(f"KFP {what}: {exc}") from exc
            except google.auth.exceptions.GoogleAuthError as exc:  # kfp's IAP / access token
                retryable = isinstance(exc, google.auth.exceptions.TransportError) or getattr(
                    exc, "retryable", False
                )
                if not retryable:
                    detail = exc.args[0] if exc.args else exc  # RefreshError: (text, response)
                    raise ConfigurationError(
                        "kfp.client_id" if self.options.client_id else "kfp.host",
                        f"kfp could not get Google credentials to {what}: {detail}",
                        "the deployer's service account must be able to sign for itself "
                        "(roles/iam.serviceAccountTokenCreator on itself: docs/backends.md)",
                    ) from None
                if attempt == ATTEMPTS:
                    raise TransientError(f"KFP {what}: Google credentials: {exc}") from exc
            time.sleep(self.backoff_seconds * 2 ** (attempt - 1))
        raise AssertionError("unreachable")

    def _google_token_may_have_expired(self, attempt: int) -> bool:
        """A token kfp got from Google (IAP ID token, inverse-proxy access token) when this
        client connected lasts an hour, and kfp never renews it on these calls; a process that
        keeps its client longer sees 401s until it connects again. On a call's first attempt
        only, and never on the connect itself (`_client` is not set yet)."""
        google_minted = bool(self.options.client_id) or (
            not self.options.token and bool(INVERSE_PROXY_HOST.match(self.options.host))
        )
        return google_minted and self._client is not None and attempt == 1

    def start(
        self,
        *,
        run_id: str,
        pipeline: str,
        template: str,
        parameters: dict[str, Any],
        labels: dict[str, str],
        announce: Callable[[dict[str, str]], None],
    ) -> PipelineOutcome:
        loaded = load_template(template)
        spec = with_caching(loaded.spec, self.options.enable_caching)
        pipeline_id, version_id, version = self._pipeline_version(pipeline, loaded, spec)
        experiment_name = self.options.experiment or pipeline
        experiment = self._call(
            "get or create the experiment",
            lambda: self.client.create_experiment(experiment_name, namespace=self._namespace),
        )
        experiment_id = experiment.experiment_id
        if self.options.recurring is None:
            kind, object_id, existed = (
                "run",
                *self._run(run_id, experiment_id, pipeline_id, version_id, parameters),
            )
            link = f"{self.options.host}/#/runs/details/{object_id}"
        else:
            kind, object_id, existed = (
                "recurring_run",
                *self._recurring_run(
                    run_id, pipeline, experiment_id, pipeline_id, version_id, parameters
                ),
            )
            link = f"{self.options.host}/#/recurringrun/details/{object_id}"
        links = {"kfp": link}
        announce(links)
        log.info("kfp_run_started", kind=kind, kfp_id=object_id, existed=existed, version=version)
        return PipelineOutcome(
            status="submitted",
            job_name=object_id,
            links=links,
            details={
                "kind": kind,
                "pipeline_id": pipeline_id,
                "pipeline_version_id": version_id,
                "pipeline_version": version,
                "experiment_id": experiment_id,
                "template": loaded.pinned_uri,
                "already_existed": existed,
            },
        )

    def cancel(self, *, run_id: str, job_name: str, requested: dict[str, str]) -> str:
        """Terminate the KFP run `start` created (`job_name`: its KFP run id). A run already
        terminating is success; one already finished is refused with its state named."""
        run = self._call("read the run", lambda: self.client.get_run(job_name))
        state = str(run.state or "RUNTIME_STATE_UNSPECIFIED")
        if state in KFP_CANCELLED:
            log.info("kfp_run_already_terminating", kfp_id=job_name, state=state)
            return state
        if state in KFP_FINISHED:
            raise PermanentError(
                "run_id",
                f"{run_id} is no longer running on the KFP host ({state})",
                "nothing to cancel; see the run's message for its outcome",
            )

        def terminating() -> Any:  # a terminate whose answer was lost may have landed
            return {} if self.client.get_run(job_name).state in KFP_CANCELLED else None

        self._call(
            "terminate the run", lambda: self.client.terminate_run(job_name), found=terminating
        )
        after = self._call("read the run", lambda: self.client.get_run(job_name))
        log.info("kfp_run_terminated", kfp_id=job_name, state=after.state)
        return str(after.state or state)

    def job_state(self, *, run_id: str, job_name: str) -> JobState | None:
        """get_run on the KFP run `start` created (`job_name`: its KFP run id); None when the
        host has no such run."""
        from kfp_server_api.exceptions import ApiException

        def read() -> Any:
            try:
                return self.client.get_run(job_name)
            except ApiException as exc:
                if exc.status == 404:
                    return None
                raise

        run = self._call("read the run", read)
        if run is None:
            return None
        state = str(run.state or "RUNTIME_STATE_UNSPECIFIED")
        failed_task, task_error = failed_kfp_task(run)
        error = getattr(run.error, "message", None) or task_error
        return JobState(
            state=state,
            status=KFP_STATUS.get(state, "pending"),
            failed_task=failed_task,
            error=str(error) if error else None,
            started_at=_kfp_time(run.scheduled_at) or _kfp_time(run.created_at),
            ended_at=_kfp_time(run.finished_at) if state in KFP_FINISHED else None,
            links={"kfp": f"{self.options.host}/#/runs/details/{job_name}"},
        )

    def _pipeline_version(
        self, pipeline: str, template: PipelineTemplate, spec: dict[str, Any]
    ) -> tuple[str, str, str]:
        import yaml

        name = version_name(template)
        if self.options.enable_caching is not None:  # the override is baked into the upload
            name += "-cache-on" if self.options.enable_caching else "-cache-off"
        with tempfile.TemporaryDirectory(prefix="mlrelay-kfp-") as folder:
            package = Path(folder) / f"{pipeline}.yaml"
            documents = [spec, template.platform_spec] if template.platform_spec else [spec]
            package.write_text(yaml.safe_dump_all(documents, sort_keys=True))
            pipeline_id = self._call(
                "look up the pipeline", lambda: self.client.get_pipeline_id(pipeline)
            )
            if pipeline_id is None:
                pipeline_id = self._call(
                    "upload the pipeline",
                    lambda: (
                        self.client.upload_pipeline(
                            str(package), pipeline_name=pipeline, namespace=self.options.namespace
                        ).pipeline_id
                    ),
                    found=lambda: self.client.get_pipeline_id(pipeline),
                )

            def version() -> Any:
                listed = self.client.list_pipeline_versions(pipeline_id, filter=by_name(name))
                return listed.pipeline_versions[0] if listed.pipeline_versions else None

            existing = self._call("list pipeline versions", version)
            if existing is not None:
                return pipeline_id, existing.pipeline_version_id, name
            created = self._call(
                "upload the pipeline version",
                lambda: self.client.upload_pipeline_version(
                    str(package), name, pipeline_id=pipeline_id
                ),
                found=version,
            )
            return pipeline_id, created.pipeline_version_id, name

    def _run(
        self,
        run_id: str,
        experiment_id: str,
        pipeline_id: str,
        version_id: str,
        parameters: dict[str, Any],
    ) -> tuple[str, bool]:
        def run() -> Any:
            listed = self.client.list_runs(experiment_id=experiment_id, filter=by_name(run_id))
            return listed.runs[0] if listed.runs else None

        existing = self._call("look up the run", run)
        if existing is not None:
            return existing.run_id, True
        created = self._call(
            "start the run",
            lambda: self.client.run_pipeline(
                experiment_id,
                run_id,
                params=parameters,
                pipeline_id=pipeline_id,
                version_id=version_id,
                pipeline_root=self.options.pipeline_root,
                service_account=self.options.service_account,
            ),
            found=run,
        )
        return created.run_id, False

    def _recurring_run(
        self,
        run_id: str,
        pipeline: str,
        experiment_id: str,
        pipeline_id: str,
        version_id: str,
        parameters: dict[str, Any],
    ) -> tuple[str, bool]:
        recurring = self.options.recurring
        assert recurring is not None
        listed = self._call(
            "list recurring runs",
            lambda: self.client.list_recurring_runs(experiment_id=experiment_id, page_size=100),
        )
        ours = [r for r in listed.recurring_runs or [] if r.display_name.startswith(f"{pipeline}-")]
        current = next((r for r in ours if r.display_name == run_id), None)
        existed = current is not None
        if current is None:
            current = self._call(
                "create the recurring run",
                lambda: self.client.create_recurring_run(
                    experiment_id,
                    run_id,
                    description=f"mlrelay: pipeline {pipeline}, replaced on every deploy",
                    cron_expression=recurring.cron,
                    max_concurrency=recurring.max_concurrency,
                    no_catchup=not recurring.catchup,
                    params=parameters,
                    pipeline_id=pipeline_id,
                    version_id=version_id,
                    enabled=recurring.enabled,
                    pipeline_root=self.options.pipeline_root,
                    service_account=self.options.service_account,
                ),
                found=lambda: next(
                    (
                        r
                        for r in self.client.list_recurring_runs(
                            experiment_id=experiment_id, page_size=100
                        ).recurring_runs
                        or []
                        if r.display_name == run_id
                    ),
                    None,
                ),
            )
        # the new schedule exists before the old ones go: no gap in between
        for old in ours:
            if old.display_name != run_id:
                self._call(
                    "delete the replaced recurring run",
                    partial(self.client.delete_recurring_run, old.recurring_run_id),
                )
                log.info("kfp_recurring_run_replaced", old=old.display_name, new=run_id)
        return current.recurring_run_id, existed


def failed_kfp_task(run: Any) -> tuple[str | None, str | None]:
    """(name, error) of the innermost failed task in `run_details.task_details`."""
    tasks = list(getattr(run.run_details, "task_details", None) or [])
    failed = [t for t in tasks if str(t.state or "") == "FAILED"]
    inner = [
        t for t in failed if t.parent_task_id and not str(t.display_name).startswith("exit-handler")
    ]
    for task in inner or failed:
        return str(task.display_name), getattr(task.error, "message", None)
    return None, None


def _kfp_time(value: Any) -> datetime | None:
    """kfp_server_api gives times as datetimes; KFP writes the epoch for one not reached yet."""
    if not isinstance(value, datetime) or value.timestamp() <= 0:
        return None
    return value


def refused_credentials(
    options: KfpOptions, what: str, status: int, message: str
) -> ConfigurationError:
    """A 401/403: the host does not accept what the deployer sent, which only our set-up fixes."""
    if options.token:
        variable = kfp_token_variable(options.token)
        field = "kfp.token"
        fix = (
            f"put a token the host accepts in {variable}'s secret; an instance reads it when it "
            "starts, so redeploy the deployer after adding the new version"
        )
    elif options.client_id:
        field = "kfp.client_id"
        fix = (
            "check it is the OAuth client id of the host's IAP, and that the deployer's service "
            "account is an IAP-secured Web App User of the host"
        )
    elif INVERSE_PROXY_HOST.match(options.host):
        field = "kfp.host"
        fix = "give the deployer's service account access to the AI Platform Pipelines instance"
    else:
        field = "kfp.host"
        fix = "the host asks for credentials: set `kfp.token` (bearer) or `kfp.client_id` (IAP)"
    return ConfigurationError(field, f"the KFP host refused to {what}: {status} {message}", fix)


def bound_requests(client: Any, seconds: float) -> None:
    """Give every request of `client` a timeout: kfp.Client has no setting for one, and its
    REST client waits for an answer forever unless a call passes `_request_timeout`, which
    kfp.Client's methods never do. (The health check inside `kfp.Client()` comes before this.)"""
    rest = client._run_api.api_client.rest_client  # one REST client behind all of kfp's APIs
    unbounded = rest.request

    def request(*args: Any, _request_timeout: Any = None, **kwargs: Any) -> Any:
        return unbounded(*args, _request_timeout=_request_timeout or (seconds, seconds), **kwargs)

    rest.request = request


def _message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    try:
        document = json.loads(body) if body else {}
    except (TypeError, ValueError):
        return str(body or exc.reason)[:300]
    if isinstance(document, dict):
        return str(document.get("message") or document.get("error") or body)[:300]
    return str(body)[:300]
