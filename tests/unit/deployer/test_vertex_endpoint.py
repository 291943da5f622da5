"""The ids promotion on Vertex AI derives from a run: its model version alias and its deployed
model id, deterministic and in the syntax the service takes."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from mlrelay_deployer.vertex_endpoint import ALIAS, deployed_model_id, version_alias

RUN_IDS = st.from_regex(r"\A[a-z][a-z0-9-]{2,127}\Z")


@given(RUN_IDS)
def test_every_run_id_has_a_valid_alias_of_its_own(run_id: str) -> None:
    alias = version_alias(run_id)
    assert ALIAS.fullmatch(alias) and alias != "default"
    assert version_alias(run_id) == alias
    assert not alias.isdigit()  # never taken for a version id


def test_the_alias_is_the_run_id_when_it_can_be() -> None:
    assert version_alias("penguins-20261201-ba9876543210") == "penguins-20261201-ba9876543210"
    assert version_alias("default") == "run-37a8eec1ce19687d132fe290"
    assert version_alias("abc-") != version_alias("abc--")
    assert re.fullmatch(r"run-[0-9a-f]{24}", version_alias("abc-"))


@given(RUN_IDS)
def test_the_deployed_model_id_is_ten_digits_fixed_by_endpoint_and_run(run_id: str) -> None:
    chosen = deployed_model_id("projects/p/locations/r/endpoints/1", run_id)
    assert re.fullmatch(r"[1-9][0-9]{9}", chosen)
    assert chosen == deployed_model_id("projects/p/locations/r/endpoints/1", run_id)
    assert chosen != deployed_model_id("projects/p/locations/r/endpoints/2", run_id)
