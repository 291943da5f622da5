"""Kubeflow Pipelines on a host the team runs itself, through `kfp.Client(host)`.

Per deploy: get-or-upload the pipeline (named as in the registry), get-or-upload the version
named after the template's digest (one version per distinct template), get-or-create the
experiment, then start the run named after the run id, or create the recurring run named after it
and delete the ones it replaces. Every step looks its object up by name first, so a redelivered
DeployRequest creates nothing twice.
"""

from __future__ import annotations

import json
import tempfile
import time
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import structlog

from mlrelay.errors import PermanentError, TransientError
from mlrelay.ports.protocols import PipelineOutcome
from mlrelay.registry.backends import KfpOptions
from mlrelay_deployer.template_source import PipelineTemplate, load_template, with_caching

log = structlog.get_logger()
T = TypeVar("T")
ATTEMPTS = 3


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


class KfpHostBackend:
    def __init__(
        self,
        options: KfpOptions,
        lifecycle_topic: str,
        *,
        backoff_seconds: float = 1.0,
        request_timeout_seconds: float = 30.0,
    ) -> None:
        self.options = options
        self.lifecycle_topic = lifecycle_topic
        self.backoff_seconds = backoff_seconds
        self.request_timeout_seconds = request_timeout_seconds
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            import kfp

            def connect() -> Any:
                with warnings.catch_warnings():  # "only works with KFP v2.0.0-beta.2 and later"
                    warnings.simplefilter("ignore", FutureWarning)
                    client = kfp.Client(host=self.options.host, namespace=self._namespace)
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
        any other answer is permanent and carries the host's message.

        `found` (for a create) looks the object up by name: a create that failed that way, or
        was refused as a duplicate (409), may have been made before its answer was lost, so it
        is looked for before being tried again."""
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
                if status != 429 and status < 500:
                    raise PermanentError(
                        "kfp",
                        f"the KFP host refused to {what}: {status} {_message(exc)}",
                        "check the registry's `kfp:` options and the template",
                    ) from None
                if attempt == ATTEMPTS:
                    raise TransientError(f"KFP {what}: {status} {_message(exc)}") from exc
            except (urllib3.exceptions.HTTPError, TimeoutError) as exc:  # TimeoutError: healthz
                if attempt == ATTEMPTS:
                    raise TransientError(f"KFP {what}: {exc}") from exc
            time.sleep(self.backoff_seconds * 2 ** (attempt - 1))
        raise AssertionError("unreachable")

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
