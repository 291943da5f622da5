"""The deployer's stage logic (mlrelay_deployer.deploy): run ids as Google label values."""

from __future__ import annotations


def test_long_run_ids_become_valid_label_values() -> None:
    from mlrelay_deployer.deploy import label_value

    long_id = "penguins-" + "a" * 80 + "-0123456789ab"
    value = label_value(long_id)
    assert len(value) <= 63
    assert value != label_value(long_id.replace("a" * 80, "b" * 80))
    assert label_value("Penguins Run") == "penguins-run"
