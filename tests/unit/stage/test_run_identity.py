from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from mlrelay.stage.run_identity import derive_run_id

VALID = re.compile(r"^[a-z][a-z0-9-]{2,127}$")
SLOT = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)


def test_same_inputs_give_the_same_run_id_whatever_the_key_order() -> None:
    a = derive_run_id("penguins", {"a": 1, "b": "x"}, logical_time=SLOT)
    b = derive_run_id("penguins", {"b": "x", "a": 1}, logical_time=SLOT)
    assert a == b
    assert a.startswith("penguins-20260329t010000z-")


def test_the_same_instant_in_another_zone_is_the_same_run() -> None:
    cet = SLOT.astimezone(timezone(timedelta(hours=2)))
    assert derive_run_id("p1", {}, logical_time=SLOT) == derive_run_id("p1", {}, logical_time=cet)


def test_parameters_slot_and_key_each_change_the_id() -> None:
    base = derive_run_id("penguins", {"a": 1}, logical_time=SLOT)
    assert derive_run_id("penguins", {"a": 2}, logical_time=SLOT) != base
    assert derive_run_id("penguins", {"a": 1}, logical_time=SLOT + timedelta(hours=1)) != base
    assert derive_run_id("penguins", {"a": 1}, dedup_key="x") != base
    assert derive_run_id("penguins", {"a": 1}, dedup_key="x", logical_time=SLOT) == (
        derive_run_id("penguins", {"a": 1}, dedup_key="x")
    )


def test_int_and_float_parameters_are_different_runs() -> None:
    assert derive_run_id("p1", {"a": 1}, dedup_key="k") != derive_run_id(
        "p1", {"a": 1.0}, dedup_key="k"
    )


@given(
    pipeline=st.from_regex(r"[a-z][a-z0-9-]{0,39}", fullmatch=True),
    key=st.text(min_size=1, max_size=200),
    params=st.dictionaries(st.text(max_size=10), st.integers() | st.text(max_size=10), max_size=4),
)
def test_run_ids_are_valid_names_for_vertex_kfp_and_bigquery(
    pipeline: str, key: str, params: dict[str, int | str]
) -> None:
    run_id = derive_run_id(pipeline, params, dedup_key=key)
    assert VALID.match(run_id), run_id
    assert run_id == derive_run_id(pipeline, dict(reversed(params.items())), dedup_key=key)
