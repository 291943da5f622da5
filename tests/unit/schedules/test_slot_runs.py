"""A Backfill button's value (the missed slot's run id) resolved to its slot and schedule
(mlrelay.schedules.slot_runs): proved against the registry, never taken on trust."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mlrelay.errors import PermanentError
from mlrelay.registry import load_registry, resolve_parameters
from mlrelay.schedules.slot_runs import find_slot_run, slot_of_run_id
from mlrelay.stage.run_identity import derive_run_id
from tests.helpers import REGISTRY

# penguins: "0 6 * * 1" in Europe/Amsterdam -> Monday 2026-11-30 06:00 CET = 05:00 UTC
SLOT = datetime(2026, 11, 30, 5, tzinfo=UTC)
NOW = SLOT + timedelta(days=1)


def slot_run_id(slot: datetime = SLOT, **parameters: object) -> str:
    registry = load_registry(REGISTRY)
    effective = {**resolve_parameters(registry.pipeline("penguins"), {}), **parameters}
    return derive_run_id("penguins", effective, logical_time=slot)  # type: ignore[arg-type]


def test_a_slot_run_id_resolves_to_its_schedule_and_slot() -> None:
    found = find_slot_run(load_registry(REGISTRY), slot_run_id(), now=NOW)
    assert (found.pipeline, found.owner, found.slot) == ("penguins", "penguins", SLOT)
    assert found.schedule.cron == "0 6 * * 1"
    request = found.backfill_request("slack:U123ABC")
    assert (request.trigger, request.logical_time, request.pipeline) == (
        "backfill",
        SLOT,
        "penguins",
    )
    assert request.schedule is not None and request.schedule.name == found.schedule.name


def test_the_id_spells_its_slot() -> None:
    assert slot_of_run_id(slot_run_id()) == ("penguins", SLOT)
    assert slot_of_run_id("penguins-sched-1") is None


@pytest.mark.parametrize(
    ("run_id", "says"),
    [
        ("penguins-not-a-slot", "not the run id of a schedule slot"),
        # a real instant, but not one the schedule fires at (a Tuesday)
        (slot_run_id(SLOT + timedelta(days=1)), "has the slot"),
        # the slot, but parameters the schedule does not run with (a forged digest)
        (slot_run_id(n_estimators=7), "has the slot"),
        (slot_run_id(SLOT + timedelta(days=7)), "still to come"),
    ],
)
def test_anything_but_a_real_past_slot_of_a_real_schedule_is_refused(
    run_id: str, says: str
) -> None:
    with pytest.raises(PermanentError, match=says):
        find_slot_run(load_registry(REGISTRY), run_id, now=NOW)
