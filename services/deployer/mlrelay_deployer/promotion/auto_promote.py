"""`auto_promote_after`: each watchdog pass asks for `promote` (source `watchdog`, requested by
`auto_promote_after`) of every canary past its `auto_promote_at`, through the same command path
as the card's button, so a person's earlier decision still wins. It reads the index of
undecided canaries (`promotions/canaries/`), never the run history: one list plus a read per
canary. An entry whose canary was decided but not carried out (its worker died) is finished
here; an entry of a decided canary is removed."""

from __future__ import annotations

from datetime import datetime

import structlog

from mlrelay.errors import PermanentError
from mlrelay.logs import bind_run
from mlrelay.ports.container import Ports
from mlrelay.promotion_record import read_promotion
from mlrelay.stage.commands import find_run, request_command
from mlrelay_deployer.promotion.decisions import carry_out, read_decision
from mlrelay_deployer.promotion.records import list_canaries, unindex_canary

log = structlog.get_logger()

REQUESTED_BY = "auto_promote_after"


def auto_promote_due(ports: Ports, now: datetime) -> list[str]:
    """The canaries whose promote command this pass published (first time in this state)."""
    asked: list[str] = []
    for entry in list_canaries(ports):
        with bind_run(run_id=entry.run_id, pipeline=entry.pipeline):
            record = read_promotion(ports.store, entry.run_id)
            if record is None or record.state in ("promoted", "rolled_back", "failed"):
                unindex_canary(ports, entry.run_id)
                continue
            if record.state != "canary":
                continue
            if read_decision(ports, entry.run_id) is not None:
                carry_out(ports, entry.run_id)  # decided; its carrying out was cut short
                continue
            if record.auto_promote_at is None:
                continue
            if datetime.fromisoformat(record.auto_promote_at) > now:
                continue
            try:
                run = find_run(ports, entry.run_id)
            except PermanentError:
                log.warning("canary_of_unknown_run")
                continue
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
            if outcome.first:
                asked.append(entry.run_id)
    return asked
