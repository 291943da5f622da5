"""BigQuery jobs with deterministic ids, and BigQuery's answers as the two error kinds.

A job id is `<base>-<step>-<attempt>`. A redelivered message looks the job up before starting one
and re-attaches to it, running or done, so it never starts a second export. Only when an attempt
failed for a transient reason (backendError, rateLimitExceeded, ...) is the next attempt started.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import structlog

from mlrelay.errors import ConfigurationError, PermanentError, TransientError

log = structlog.get_logger()

MAX_ATTEMPTS = 3
# https://cloud.google.com/bigquery/docs/error-messages: retrying may help for these reasons
TRANSIENT_REASONS = frozenset(
    {
        "backendError",
        "internalError",
        "jobBackendError",
        "jobInternalError",
        "jobRateLimitExceeded",
        "rateLimitExceeded",
        "quotaExceeded",
        "tableUnavailable",
        "timeout",
    }
)
# A write that lost a race with another job on the same table: BigQuery answers `invalidQuery`
# "Could not serialize access to table ... due to concurrent update"; the BigQuery emulator says
# "Failed to commit DuckLake transaction". Retrying the job is the documented remedy.
CONFLICT_MARKERS = ("due to concurrent update", "could not serialize access", "failed to commit")
PERMISSION_FIX = (
    "grant the function's service account roles/bigquery.dataViewer on the source, "
    "roles/bigquery.dataEditor on the staging dataset and roles/bigquery.jobUser on the project"
)


def is_conflict(message: str) -> bool:
    text = message.lower()
    return any(marker in text for marker in CONFLICT_MARKERS)


def reason_of(exc: Any) -> str:
    for error in getattr(exc, "errors", None) or []:
        if isinstance(error, dict) and error.get("reason"):
            return str(error["reason"])
    return ""


@contextlib.contextmanager
def bigquery_errors(what: str, field: str = "source") -> Iterator[None]:
    """Permission, not-found and invalid requests are permanent; 5xx, 429, rate limits and
    timeouts are transient (raise, so Pub/Sub redelivers)."""
    import concurrent.futures

    import requests  # type: ignore[import-untyped,unused-ignore]
    from google.api_core import exceptions

    try:
        yield
    except exceptions.RetryError as exc:  # the client's own retries ran out (5xx, timeouts)
        raise TransientError(f"BigQuery {what}: {exc.message}") from exc
    except exceptions.GoogleAPICallError as exc:
        reason = reason_of(exc)
        if (
            reason in TRANSIENT_REASONS
            or is_conflict(str(exc.message))
            or isinstance(
                exc,
                exceptions.ServerError | exceptions.TooManyRequests | exceptions.DeadlineExceeded,
            )
        ):
            raise TransientError(f"BigQuery {what}: {exc.message} ({reason or exc.code})") from exc
        if isinstance(exc, exceptions.Forbidden | exceptions.Unauthorized):
            # the function's own access (IAM): the message succeeds once it is granted
            raise ConfigurationError(
                field, f"{what} was refused: {exc.message}", PERMISSION_FIX
            ) from None
        if isinstance(exc, exceptions.NotFound) and field.startswith("MLRELAY_"):
            raise ConfigurationError(
                field, f"{what}: {exc.message}", f"create it (infra/) or fix {field}"
            ) from None
        if isinstance(exc, exceptions.NotFound):
            raise PermanentError(
                field, f"{what}: {exc.message}", "fix the pipeline's source in the registry"
            ) from None
        if isinstance(exc, exceptions.ClientError):
            raise PermanentError(
                field, f"{what}: {exc.message}", "fix the pipeline's source in the registry"
            ) from None
        raise TransientError(f"BigQuery {what}: {exc}") from exc
    except (
        requests.exceptions.ConnectionError,
        requests.exceptions.Timeout,
        concurrent.futures.TimeoutError,
    ) as exc:
        raise TransientError(f"BigQuery {what}: {exc!r}") from exc


def job_failure(job: Any) -> tuple[bool, str]:
    """(transient?, text) of a finished job's error."""
    error = job.error_result or {}
    reason, message = str(error.get("reason", "")), str(error.get("message", ""))
    return reason in TRANSIENT_REASONS or is_conflict(message), f"{reason}: {message}"


def run_job(
    client: Any,
    base_id: str,
    start: Callable[[str], Any],
    *,
    what: str,
    location: str | None,
    wait_seconds: float,
    retry: Any = None,
    timeout: float | None = None,
    field: str = "source",
) -> Any:
    """Re-attach to (or start) job `<base_id>-<n>` and wait until it is DONE without error."""
    from google.api_core import exceptions

    for attempt in range(1, MAX_ATTEMPTS + 1):
        job_id = f"{base_id}-{attempt}"
        with bigquery_errors(f"{what} (job {job_id})", field):
            try:
                job = client.get_job(job_id, location=location, retry=retry, timeout=timeout)
                log.info("bigquery_job_reattached", job_id=job_id, state=job.state)
            except exceptions.NotFound:
                try:
                    job = start(job_id)
                    log.info("bigquery_job_started", job_id=job_id)
                except exceptions.Conflict:  # another delivery started it a moment ago
                    job = client.get_job(job_id, location=location, retry=retry, timeout=timeout)
                    log.info("bigquery_job_reattached", job_id=job_id, state=job.state)
            wait_until_done(job, wait_seconds, retry, timeout)
        if job.error_result is None:
            return job
        transient, text = job_failure(job)
        if not transient:
            raise PermanentError(field, f"{what} failed (job {job_id}): {text}")
        log.warning("bigquery_job_failed_transiently", job_id=job_id, error=text)
    raise TransientError(f"{what}: {MAX_ATTEMPTS} attempts failed transiently")


def wait_until_done(
    job: Any, wait_seconds: float, retry: Any = None, timeout: float | None = None
) -> None:
    """Poll the job; past the wait, raise TransientError (the redelivery re-attaches)."""
    deadline = time.monotonic() + wait_seconds
    pause = 0.2
    while job.state != "DONE":
        if time.monotonic() > deadline:
            raise TransientError(
                f"BigQuery job {job.job_id} is still running after {wait_seconds:.0f}s; "
                "the redelivered message re-attaches to it"
            )
        time.sleep(pause)
        pause = min(pause * 1.5, 5.0)
        job.reload(retry=retry, timeout=timeout)
