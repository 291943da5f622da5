"""`local_job`'s plain parts: the child's command line and environment from the `job:` entry,
the output folder as a path the child can open, and what `metrics.json` may hold (the children
themselves: tests/integration/deployer/test_local_job_backend.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlrelay.errors import PermanentError
from mlrelay.registry.jobs import JobEntry
from mlrelay_deployer.local_job_backend import job_command, local_path, read_metrics

ARGUMENTS = {
    "n_estimators": 200,
    "early_stop": True,
    "run_id": "penguins-job-manual-1",
    "snapshot_manifest_uri": "file:///b/snapshots/m.json",
    "snapshot_fingerprint": "f" * 64,
    "mlrelay_pipeline": "penguins-job",
    "mlrelay_lifecycle_destination": "",
}


def test_python_is_this_interpreter_and_placeholders_take_the_run_values() -> None:
    entry = JobEntry(
        command=["python3", "train.py"],
        args=["--trees={n_estimators}", "--stop={early_stop}", "{{literal}}"],
        env={"RUN": "{pipeline}/{run_id}"},
    )

    command = job_command(entry, ARGUMENTS, "/b/jobs/r/", interpreter="/venv/bin/python")

    assert command.argv == [
        "/venv/bin/python", "train.py", "--trees=200", "--stop=true", "{literal}",
    ]  # fmt: skip
    assert command.env["RUN"] == "penguins-job/penguins-job-manual-1"
    assert command.env["MLRELAY_OUTPUT_DIR"] == "/b/jobs/r/"
    assert command.env["AIP_MODEL_DIR"] == "/b/jobs/r/model/"


def test_only_python_as_the_first_word_is_replaced() -> None:
    entry = JobEntry(command=["bash", "-c", "python train.py"])
    command = job_command(entry, ARGUMENTS, "/o/", interpreter="/venv/bin/python")
    assert command.argv == ["bash", "-c", "python train.py"]


def test_a_placeholder_without_a_value_names_the_argument() -> None:
    entry = JobEntry(command=["python", "train.py"], args=["--epochs={epochs}"])
    with pytest.raises(PermanentError) as caught:
        job_command(entry, ARGUMENTS, "/o/", interpreter="python")
    assert caught.value.field == "job.args[0]"
    assert "{epochs} names no value" in caught.value.problem


def test_a_local_bucket_uri_becomes_a_plain_path_and_gs_stays() -> None:
    assert local_path("file:///home/me/.mlrelay/bucket/jobs/r%201/") == (
        "/home/me/.mlrelay/bucket/jobs/r 1/"
    )
    assert local_path("gs://bucket/jobs/r/") == "gs://bucket/jobs/r/"


def test_metrics_are_one_object_of_numbers(tmp_path: Path) -> None:
    assert read_metrics(str(tmp_path)) == {}  # none written: no figures
    (tmp_path / "metrics.json").write_text(json.dumps({"accuracy": 0.9, "n_test": 84}))
    assert read_metrics(f"{tmp_path}/") == {"accuracy": 0.9, "n_test": 84.0}
    for bad, field in (
        ({"ok": True}, "metrics.json.ok"),
        ([0.9], "metrics.json"),
        ({"nested": {"a": 1}}, "metrics.json.nested"),
    ):
        (tmp_path / "metrics.json").write_text(json.dumps(bad))
        with pytest.raises(PermanentError) as caught:
            read_metrics(str(tmp_path))
        assert caught.value.field == field
    (tmp_path / "metrics.json").write_text("{accuracy")
    with pytest.raises(PermanentError, match="is not JSON"):
        read_metrics(str(tmp_path))
