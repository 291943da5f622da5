"""After a successful run (`pipeline.succeeded`, its gates passed): the run's model becomes a
new version of the pipeline's model and serves `canary_percent` of the endpoint beside the
champion (or 100 % of an endpoint that served nothing: `first`).

Order, each step safe to repeat (`promotions/<run_id>/deploy.json` is the claim; a redelivery
after a lost answer takes it over and redoes only what is missing):
1. wait for the run's verdict (the notifier's history summary, written on the same event):
   absent -> TransientError (redelivered); `succeeded_with_regression` -> no promotion;
2. the model's URI (model_artifact), then `upload` (the endpoint finds the run's version);
3. holding the endpoint (one promotion moves it at a time: endpoint_lock), an undecided canary
   of another run on the same endpoint is rolled back first (superseded);
4. the split before is recorded (`state: deploying`, `previous_traffic`) BEFORE deploying, and
   a redelivery uses the recorded one, never the endpoint's split of the moment;
5. deploy (or, when the endpoint already serves the version, only set the split), record
   `canary` (indexed for `auto_promote_after`) or `promoted`, and publish its event once.
Any PermanentError (no such output, a refused upload or deploy) is one `promotion.failed`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import structlog

from mlrelay.contracts import LifecycleEvent, utc_now
from mlrelay.errors import PermanentError, TransientError
from mlrelay.history import read_summary
from mlrelay.ports.container import Ports
from mlrelay.ports.protocols import NEW_DEPLOYMENT, EndpointState, ModelEndpoint, ModelVersion
from mlrelay.promotion_record import PromotionRecord, read_promotion
from mlrelay.registry.specs import PipelineSpec, duration_seconds
from mlrelay.stage import keys
from mlrelay.stage.envelope import PubsubMessage
from mlrelay.stage.ledger import run_once
from mlrelay_deployer.promotion.decisions import carry_out, decide
from mlrelay_deployer.promotion.endpoint_lock import holding_endpoint
from mlrelay_deployer.promotion.endpoints import endpoint_of
from mlrelay_deployer.promotion.model_artifact import model_artifact
from mlrelay_deployer.promotion.records import (
    announce,
    index_canary,
    list_canaries,
    write_record,
)
from mlrelay_deployer.promotion.split import canary_split, champion_run

log = structlog.get_logger()


def promote_after_success(event: LifecycleEvent, message: PubsubMessage, ports: Ports) -> None:
    if event.stage != "pipeline" or event.status != "succeeded" or not event.pipeline:
        return  # the subscription's filter lets only pipeline.succeeded through
    run_id, pipeline = event.run_id, event.pipeline
    spec = ports.registry.pipelines.get(pipeline)
    if spec is None or spec.promotion is None:
        log.info("promotion_not_configured")
        return
    summary = read_summary(ports.store, pipeline, run_id)
    if summary is None:
        raise TransientError(f"{run_id}: the run's verdict is not written yet; redeliver")
    if summary.status != "succeeded":
        log.info("promotion_skipped", verdict=summary.status, regressions=summary.regressions)
        return
    outcome = run_once(
        ports.store,
        keys.promotion_deploy(run_id),
        "promotion",
        lambda: deploy_canary(ports, pipeline, spec, run_id),
        lease=ports.settings.claim_lease,
    )
    record = read_promotion(ports.store, run_id)
    if outcome.record.state == "failed":
        if record is None or record.state in ("deploying", "failed"):
            record = PromotionRecord(
                state="failed",
                pipeline=pipeline,
                endpoint=spec.promotion.endpoint,
                error=outcome.record.error,
            )
            write_record(ports, run_id, record)
        log.warning("promotion_failed", error=outcome.record.error)
    if record is not None:
        announce(ports, run_id, record)


def deploy_canary(ports: Ports, pipeline: str, spec: PipelineSpec, run_id: str) -> dict[str, Any]:
    assert spec.promotion is not None
    promotion = spec.promotion
    endpoint = endpoint_of(ports, pipeline)
    artifact = model_artifact(ports, spec, run_id)
    version = endpoint.upload(
        run_id=run_id,
        artifact_uri=artifact,
        labels={"mlrelay-pipeline": pipeline, "mlrelay-run-id": run_id},
    )
    record = read_promotion(ports.store, run_id)
    if record is not None and record.state not in ("deploying", "failed"):
        settle(ports, run_id, record)  # recorded; its index entry or event may be missing
        return {"state": record.state}
    with holding_endpoint(ports, promotion.endpoint):  # one promotion moves it at a time
        supersede(ports, run_id, promotion.endpoint)
        state = endpoint.state()
        if record is None or record.state == "failed":
            record = deploying_record(ports, pipeline, spec, version, state)
            write_record(ports, run_id, record)  # the split to restore, before anything moves
        state = deploy_with_split(endpoint, version, record, state)
        mine = serving(state, version)
        if mine is None:
            raise TransientError(f"{promotion.endpoint} does not show {version.name} deployed yet")
        first = not record.previous_traffic
        record = record.model_copy(
            update={
                "state": "promoted" if first else "canary",
                "deployed_model_id": mine,
                "traffic": dict(state.traffic),
                "auto_promote_at": None if first else record.auto_promote_at,
            }
        )
        write_record(ports, run_id, record)
        settle(ports, run_id, record)
    log.info("model_deployed", state=record.state, deployed_model_id=mine, traffic=record.traffic)
    return {"state": record.state, "deployed_model_id": mine}


def deploying_record(
    ports: Ports,
    pipeline: str,
    spec: PipelineSpec,
    version: ModelVersion,
    state: EndpointState,
) -> PromotionRecord:
    assert spec.promotion is not None
    promotion = spec.promotion
    previous = {key: value for key, value in state.traffic.items() if value > 0}
    auto_at = None
    if promotion.auto_promote_after is not None and previous:
        wait = timedelta(seconds=duration_seconds(promotion.auto_promote_after))
        auto_at = (utc_now() + wait).isoformat()
    return PromotionRecord(
        state="deploying",
        pipeline=pipeline,
        endpoint=promotion.endpoint,
        model=version.name,
        version_id=version.version_id,
        canary_percent=promotion.canary_percent if previous else 100,
        previous_traffic=previous,
        champion_run_id=champion_run(state, previous),
        auto_promote_at=auto_at,
    )


def deploy_with_split(
    endpoint: ModelEndpoint, version: ModelVersion, record: PromotionRecord, state: EndpointState
) -> EndpointState:
    """Deploy the version with the split made from the recorded one; when the endpoint already
    serves it (a lost answer), only make sure of the split."""
    if record.previous_traffic:
        target = {
            **canary_split(record.previous_traffic, record.canary_percent),
            NEW_DEPLOYMENT: record.canary_percent,
        }
    else:
        target = {NEW_DEPLOYMENT: 100}
    mine = serving(state, version)
    if mine is None:
        return endpoint.deploy(version=version, traffic=target)
    wanted = {mine if key == NEW_DEPLOYMENT else key: value for key, value in target.items()}
    if {k: v for k, v in state.traffic.items() if v} == {k: v for k, v in wanted.items() if v}:
        return state
    return endpoint.set_traffic(wanted)


def serving(state: EndpointState, version: ModelVersion) -> str | None:
    for deployed in state.deployed:
        if deployed.model == version.name:
            return deployed.id
    return None


def settle(ports: Ports, run_id: str, record: PromotionRecord) -> None:
    if record.state == "canary":
        index_canary(ports, run_id, record)


def supersede(ports: Ports, run_id: str, endpoint_name: str) -> None:
    """Roll back every undecided canary of another run on this endpoint (one canary per
    endpoint): the newest successful run's model is the one to judge. A canary a person decided
    meanwhile keeps that decision (the first decision wins); either way it is carried out
    before this run reads the endpoint's split."""
    for entry in list_canaries(ports):
        if entry.run_id == run_id or entry.endpoint != endpoint_name:
            continue
        command = {
            "action": "rollback",
            "requested_by": f"run {run_id}",
            "requested_at": utc_now().isoformat(),
            "source": "promotion",
            "superseded_by": run_id,
        }
        decided = decide(ports, entry.run_id, "rollback", command)
        log.info("canary_superseded", canary=entry.run_id, decision=decided.get("decision"))
        try:
            carry_out(ports, entry.run_id)
        except PermanentError:  # that canary's record says failed, and its card heard it
            log.warning("superseded_canary_not_carried_out", canary=entry.run_id)
