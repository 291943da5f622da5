"""The completion reporter: a KFP component a pipeline puts in its exit handler, so the run itself
says how it ended (`pipeline.succeeded` / `pipeline.failed` / `pipeline.cancelled` LifecycleEvent)
wherever it ran.

    from mlrelay.kfp_components import completion_reporter

    report = completion_reporter(BASE_IMAGE)(
        run_id=run_id, pipeline=mlrelay_pipeline, destination=mlrelay_lifecycle_destination
    )
    with dsl.ExitHandler(report):
        ...the pipeline's tasks...

The deployer passes `mlrelay_pipeline` and `mlrelay_lifecycle_destination` to any template that
declares them: the lifecycle topic (`projects/<p>/topics/<t>`) on Vertex AI and KFP hosts, a
local outbox folder for `kfp.local` (the local backend publishes what lands there onto the bus).

The component body is self-contained and uses the standard library only (it runs in the
pipeline's base image, which need not have mlrelay or google-cloud-pubsub): Pub/Sub is reached
over REST with the runtime's service account token from the metadata server (GCE_METADATA_HOST,
google-auth's override, else metadata.google.internal), or the emulator when PUBSUB_EMULATOR_HOST
is set. The token fetch and the publish are retried together (429, 5xx, no answer: exponential
backoff with full jitter, 8 attempts); any other answer raises at once, naming who answered, the
status and Google's error status and message. The tests in
`tests/*/kfp_components/test_completion.py` check that what it writes is a valid `LifecycleEvent`
with the attributes mlrelay's own publisher would set.
"""

from typing import Any

from kfp import dsl


def report_pipeline_completion(
    status: dsl.PipelineTaskFinalStatus,
    run_id: str,
    pipeline: str,
    destination: str,
) -> None:
    """Publish this run's final state as an mlrelay LifecycleEvent to `destination`."""
    import base64
    import datetime
    import json
    import os
    import random
    import re
    import time
    import urllib.error
    import urllib.request
    from pathlib import Path

    state = str(status.state)
    succeeded = state == "SUCCEEDED"
    message = (status.error_message or "").strip()
    failed_task = None
    if not succeeded:
        # Vertex AI: "The DAG failed because some tasks failed. The failed tasks are: [train]."
        # kfp.local: "Task exit-handler-1 failed." (the group; the runner names the inner task)
        listed = re.search(r"failed tasks are: \[([^\]]+)\]", message)
        single = re.search(r"Task (\S+) failed", message)
        if listed:
            failed_task = listed.group(1).split(",")[0].strip()
        elif single:
            failed_task = single.group(1)
    # Vertex AI says CANCELLED, a KFP host CANCELED: the same word as the log relay's, so the
    # two reports of one cancelled job are one notification
    cancelled = state in ("CANCELLED", "CANCELED")
    outcome = "succeeded" if succeeded else "cancelled" if cancelled else "failed"
    if succeeded:
        summary = f"pipeline {pipeline} succeeded"
    elif cancelled:
        summary = f"pipeline {pipeline} was cancelled"
    else:
        summary = f"pipeline failed at {failed_task or 'a task'}"
    details = {
        "reported_by": "exit_handler",
        "final_state": state,
        "pipeline_job": status.pipeline_job_resource_name,
    }
    if failed_task:
        details["failed_task"] = failed_task
    event = {
        "schema_version": 1,
        "run_id": run_id,
        "pipeline": pipeline,
        "stage": "pipeline",
        "status": outcome,
        "occurred_at": datetime.datetime.now(datetime.UTC).isoformat(),
        "summary": summary,
        "details": details,
    }
    if outcome == "failed":
        event["error"] = message or f"final state {state}"
    attributes = {
        "event_type": f"lifecycle.pipeline.{outcome}",
        "schema_version": "1",
        "run_id": run_id,
        "pipeline": pipeline,
    }
    data = json.dumps(event, separators=(",", ":")).encode()
    print(f"mlrelay completion: {outcome} ({state}) -> {destination or '(nowhere)'}")

    if not destination:
        return
    if not destination.startswith("projects/"):  # a local outbox folder (kfp.local)
        folder = Path(destination.removeprefix("file://"))
        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / f"{run_id}.json.partial"
        partial.write_text(json.dumps({"data": event, "attributes": attributes}, indent=2))
        partial.replace(folder / f"{run_id}.json")
        return
    if not re.fullmatch(r"projects/[^/]+/topics/[^/]+", destination):
        raise ValueError(f"destination {destination!r} is not projects/<project>/topics/<topic>")

    # The token and the publish are retried together: a metadata server that is not answering
    # yet (the job's first seconds) is as transient as a Pub/Sub 503. 429, 5xx and network
    # errors are retried with exponential backoff and full jitter; any other answer is named
    # (who answered, the status, Google's error status and message) and raised at once.
    emulator = os.environ.get("PUBSUB_EMULATOR_HOST")
    # GCE_METADATA_HOST: google-auth's name for where the metadata server is. The emulator needs
    # no token, so it is only asked for one there when GCE_METADATA_HOST names a server.
    metadata_host = os.environ.get("GCE_METADATA_HOST")
    wants_token = not emulator or bool(metadata_host)
    token_url = (
        f"http://{metadata_host or 'metadata.google.internal'}"
        "/computeMetadata/v1/instance/service-accounts/default/token"
    )
    if emulator:
        url = f"http://{emulator}/v1/{destination}:publish"
    else:
        url = f"https://pubsub.googleapis.com/v1/{destination}:publish"
    body = json.dumps(
        {"messages": [{"data": base64.b64encode(data).decode(), "attributes": attributes}]}
    ).encode()

    def named(exc: urllib.error.HTTPError, who: str) -> str:
        text = exc.read().decode(errors="replace")
        try:
            error = json.loads(text).get("error") or {}
        except (ValueError, AttributeError):
            error = {}
        if not isinstance(error, dict):  # the metadata server answers {"error": "<text>"}
            error = {"message": str(error)}
        status_name = error.get("status") or exc.reason or ""
        detail = error.get("message") or text.strip()[:300] or "(no body)"
        return f"{who} answered {exc.code} {status_name}: {detail}"

    attempts = 8
    headers = {"Content-Type": "application/json"}
    for attempt in range(1, attempts + 1):
        who = f"metadata server token fetch ({token_url})"
        try:
            if wants_token and "Authorization" not in headers:
                token_request = urllib.request.Request(
                    token_url, headers={"Metadata-Flavor": "Google"}
                )
                with urllib.request.urlopen(token_request, timeout=10) as answer:  # noqa: S310
                    headers["Authorization"] = "Bearer " + json.load(answer)["access_token"]
            who = f"Pub/Sub publish to {destination}"
            request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
            with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
                print("mlrelay completion: published", json.load(answer).get("messageIds"))
                return
        except urllib.error.HTTPError as exc:
            failure = named(exc, who)
            if exc.code != 429 and exc.code < 500:
                raise RuntimeError(failure) from exc
        except (OSError, ValueError, KeyError) as exc:  # no answer, or not the answer expected
            failure = f"{who} failed: {type(exc).__name__}: {exc}"
        if attempt == attempts:
            raise RuntimeError(f"{failure} (gave up after {attempts} attempts)")
        delay = random.uniform(0.0, min(30.0, 0.5 * 2.0**attempt))  # noqa: S311 - jitter only
        print(f"mlrelay completion: {failure}; retrying in {delay:.1f}s")
        time.sleep(delay)


def completion_reporter(base_image: str) -> Any:
    """The reporter as a KFP component running in `base_image` (any image with Python 3.11+)."""
    return dsl.component(base_image=base_image)(report_pipeline_completion)
