"""A canary's one decision (promote or roll back) and carrying it out on the endpoint.

The decision is one create-only claim (`promotions/<run_id>/decision.json`): whichever of a
person's command, `auto_promote_after` (a command too, from the watchdog) or a newer run's
canary superseding it claims it first is the decision. Carrying it out is safe to repeat: it
reads the run's record and moves the endpoint to the decision's end state; a record already
promoted or rolled back only has its event published (once).

- promote: the challenger gets 100 %, then every other deployed model is undeployed;
- rollback: the challenger is undeployed with `traffic = previous_traffic`, exactly the split
  recorded before the canary was deployed.

A decision the endpoint can never carry out (the canary undeployed by hand, a split Vertex AI
refuses) makes the record `failed` with the error and one `promotion.failed`, then raises: it
is heard once, and nothing asks for it again.
"""

from __future__ import annotations

from typing import Any, Literal

import structlog

from mlrelay.contracts import utc_now
from mlrelay.errors import PermanentError
from mlrelay.ports.container import Ports
from mlrelay.ports.protocols import ModelEndpoint
from mlrelay.promotion_record import PromotionRecord, read_promotion
from mlrelay.stage import keys
from mlrelay.stage.ledger import run_once
from mlrelay.stage.records import StageRecord
from mlrelay_deployer.promotion.endpoint_lock import holding_endpoint
from mlrelay_deployer.promotion.endpoints import endpoint_of
from mlrelay_deployer.promotion.records import announce, unindex_canary, write_record

log = structlog.get_logger()

Choice = Literal["promote", "rollback"]


def decide(ports: Ports, run_id: str, choice: Choice, command: dict[str, Any]) -> dict[str, Any]:
    """Claim the canary's one decision; the decision as taken (by this or an earlier one):
    `{"decision", "command", "decided_at"}`."""

    def record() -> dict[str, Any]:
        return {"decision": choice, "command": command, "decided_at": utc_now().isoformat()}

    outcome = run_once(
        ports.store,
        keys.promotion_decision(run_id),
        "promotion-decision",
        record,
        lease=ports.settings.claim_lease,
    )
    return outcome.result


def read_decision(ports: Ports, run_id: str) -> dict[str, Any] | None:
    raw = ports.store.read(keys.promotion_decision(run_id))
    if raw is None:
        return None
    record = StageRecord.from_json(raw)
    return record.result if record.state == "done" else None


def carry_out(
    ports: Ports, run_id: str, endpoint: ModelEndpoint | None = None
) -> PromotionRecord | None:
    """Finish the canary's decision (again, on a redelivery); the record as it is now."""
    record = read_promotion(ports.store, run_id)
    decided = read_decision(ports, run_id)
    if record is None or decided is None:
        return record
    if record.state == "canary":
        with holding_endpoint(ports, record.endpoint):  # one promotion moves it at a time
            record = read_promotion(ports.store, run_id) or record  # as it is under the hold
            if record.state == "canary":
                endpoint = endpoint or endpoint_of(ports, record.pipeline)
                command = dict(decided.get("command") or {})
                try:
                    if decided["decision"] == "promote":
                        record = promote_on(endpoint, record, command)
                    else:
                        record = roll_back_on(endpoint, record, command)
                except PermanentError as refused:  # it can never be carried out: say so, once
                    failed = record.model_copy(
                        update={"state": "failed", "error": str(refused), "command": command}
                    )
                    write_record(ports, run_id, failed)
                    unindex_canary(ports, run_id)
                    announce(ports, run_id, failed)
                    log.warning("promotion_decision_failed", error=str(refused))
                    raise
                write_record(ports, run_id, record)
                log.info("promotion_decided", decision=decided["decision"], state=record.state)
    if record.state in ("promoted", "rolled_back"):
        unindex_canary(ports, run_id)
        announce(ports, run_id, record)
    return record


def promote_on(
    endpoint: ModelEndpoint, record: PromotionRecord, command: dict[str, Any]
) -> PromotionRecord:
    mine = record.deployed_model_id
    state = endpoint.state()
    if {d.id for d in state.deployed} and mine not in {d.id for d in state.deployed}:
        raise PermanentError(
            "run_id",
            f"the canary's deployed model {mine} is no longer on {record.endpoint}",
            "someone undeployed it by hand; run the pipeline again for a new canary",
        )
    if state.traffic != {mine: 100}:
        state = endpoint.set_traffic({mine: 100})
    for deployed in state.deployed:
        if deployed.id != mine:
            state = endpoint.undeploy(deployed_model_id=deployed.id, traffic={mine: 100})
    return record.model_copy(
        update={"state": "promoted", "traffic": dict(state.traffic), "command": command}
    )


def roll_back_on(
    endpoint: ModelEndpoint, record: PromotionRecord, command: dict[str, Any]
) -> PromotionRecord:
    state = endpoint.undeploy(
        deployed_model_id=record.deployed_model_id, traffic=dict(record.previous_traffic)
    )
    return record.model_copy(
        update={"state": "rolled_back", "traffic": dict(state.traffic), "command": command}
    )
