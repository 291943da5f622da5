"""`auto_promote_after`: each watchdog pass asks for `promote` (source `watchdog`, requested by
`auto_promote_after`) of every canary past its `auto_promote_at`, through the same command path
as the card's button, so a person's earlier decision still wins. It reads the index of
undecided canaries (`promotions/canaries/`), never the run history: one list plus a read per
canary. An entry whose canary was decided but not carried out (its worker died) is finished
here; an entry of a decided canary is removed."""

from __future__ import annotations

from datetime import datetime

import structlog

from mlrelay.errors import PermanentError, TransientError
from mlrelay.logs import bind_run
from mlrelay.ports.container import Ports
from mlrelay.promotion_record import read_promotion
from mlrelay.stage.commands import find_run, request_command
from mlrelay_deployer.promotion.decisions import carry_out, read_decision
from mlrelay_deployer.promotion.records import list_canaries, unindex_canary

log = structlog.get_logger()

REQUESTED_BY = "auto_promote_after"


def auto_promote_due(ports: Ports, now: datetime) -> list[str]:
    """The canaries whose promote command this pass published (first time in this state). One
    canary's trouble never stops the pass (the watchdog's other checks follow it): it is logged,
    and a decision that can never be carried out was made `promotion.failed` by `carry_out`."""
    asked: list[str] = []
    for entry in list_canaries(ports):
        with bind_run(run_id=entry.run_id, pipeline=entry.pipeline):
            try:
                if auto_promote_one(ports, entry.run_id, now):
                    asked.append(entry.run_id)
            except (PermanentError, TransientError) as exc:
                log.warning("auto_promote_skipped", error=str(exc))
    return asked


def auto_promote_one(ports: Ports, run_id: str, now: datetime) -> bool:
    """True when this pass published the canary's promote command."""
    record = read_promotion(ports.store, run_id)
    if record is None or record.state in ("promoted", "rolled_back", "failed"):
        unindex_canary(ports, run_id)
        return False
    if record.state != "canary":
        return False
    if read_decision(ports, run_id) is not None:
        carry_out(ports, run_id)  # decided; its carrying out was cut short
        return False
    if record.auto_promote_at is None or datetime.fromisoformat(record.auto_promote_at) > now:
        return False
    try:
        run = find_run(ports, run_id)
    except PermanentError:
        log.warning("canary_of_unknown_run")
        return False
    outcome = request_command(
        ports,
        run,
        "promote",
        requested_by=REQUESTED_BY,
        requested_at=now,
        response_url=None,
        source="watchdog",
    )
    log.info("auto_promote_requested", first=outcome.first)
    return outcome.first
