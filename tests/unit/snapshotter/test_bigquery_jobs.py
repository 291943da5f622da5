"""How a finished BigQuery job's error is classified (mlrelay_snapshotter.bigquery_jobs): a
conflict with a concurrent update is retried, other refusals are not."""

from __future__ import annotations


def test_a_job_that_failed_on_a_concurrent_update_is_retried_others_are_not() -> None:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    from mlrelay_snapshotter.bigquery_jobs import job_failure

    client = bigquery.Client(project="p", credentials=AnonymousCredentials())

    def failed_job(reason: str, message: str) -> bigquery.QueryJob:
        resource = {
            "jobReference": {"projectId": "p", "jobId": "j"},
            "configuration": {"query": {"query": "SELECT 1"}},
            "status": {"state": "DONE", "errorResult": {"reason": reason, "message": message}},
        }
        return bigquery.QueryJob.from_api_repr(resource, client)

    conflict = "Could not serialize access to table p:d.t due to concurrent update"
    assert job_failure(failed_job("invalidQuery", conflict))[0] is True
    assert job_failure(failed_job("invalidQuery", "Unrecognized name: x"))[0] is False
    assert job_failure(failed_job("jobRateLimitExceeded", "too many jobs"))[0] is True
