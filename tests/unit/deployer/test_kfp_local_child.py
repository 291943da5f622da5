"""What the kfp.local child reads from KFP's output: the failed task and its error lines."""

from mlrelay_deployer.kfp_local_child import find_failed_task, task_error_lines


def test_failed_task_and_error_are_parsed_from_kfp_output() -> None:
    log = "\n".join(
        [
            "17:22:24.229 - INFO - Executing task \x1b[96m'preprocess'\x1b[0m",
            "17:22:24.229 - INFO - Streamed logs:",
            "",
            "    [KFP Executor 2026-11-25 17:22:24,842 INFO]: Got executor_input:",
            "    Traceback (most recent call last):",
            '      File "/x/executor.py", line 453, in execute',
            "        result = self.func(**func_kwargs)",
            "                 ^^^^^^^^^^^^^^^^^^^^^^^^",
            '      File "/tmp/t/ephemeral_component.py", line 65, in preprocess',
            "        raise ValueError(",
            "    ValueError: sha256 checksum mismatch for snapshot file 'part-0.parquet'",
            "",
            "17:22:26.707 - ERROR - Task \x1b[96m'preprocess'\x1b[0m finished with status "
            "\x1b[91mFAILURE\x1b[0m",
        ]
    )
    exception = (
        "RuntimeError: Pipeline \x1b[95m'penguins-training'\x1b[0m finished with status "
        "FAILURE. Inner task failed: \x1b[96m'preprocess'\x1b[0m."
    )

    assert find_failed_task(exception, log) == "preprocess"
    assert find_failed_task("boom", log) == "preprocess"
    assert task_error_lines(log, "preprocess") == [
        'File "/tmp/t/ephemeral_component.py", line 65, in preprocess',
        "ValueError: sha256 checksum mismatch for snapshot file 'part-0.parquet'",
    ]
