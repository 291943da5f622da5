"""An in-memory ModelEndpoint (our own port, not a Google client) that keeps Vertex AI's rules,
for the promotion flow's tests: a traffic split names deployed models only and sums to 100 while
any model is deployed; a deploy's own share is under NEW_DEPLOYMENT ("0") and the endpoint
assigns the deployed model's id; undeploying leaves the rest split as the call says. `lose`
makes the next call of a kind do its work and then lose its answer (a TransientError), as the
fault proxy's LOSE does to a real one."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlrelay.errors import TransientError
from mlrelay.ports.protocols import (
    NEW_DEPLOYMENT,
    DeployedModel,
    EndpointState,
    ModelVersion,
)
from mlrelay.stage import keys
from mlrelay.stage.records import StageRecord


class SplitRefused(AssertionError):
    """Vertex AI would answer 400 INVALID_ARGUMENT: the flow computed a wrong split."""


@dataclass
class MemoryEndpoint:
    name: str = "penguins"
    model: str = "penguins"
    versions: dict[str, ModelVersion] = field(default_factory=dict)  # run id -> version
    deployed: dict[str, DeployedModel] = field(default_factory=dict)
    traffic: dict[str, int] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)  # every mutating call, in order
    lose: set[str] = field(default_factory=set)  # call kinds whose next answer is lost
    next_id: int = 1000

    def _answer(self, kind: str) -> None:
        if kind in self.lose:
            self.lose.discard(kind)
            raise TransientError(f"{kind}: the answer was lost")

    def _check(self, traffic: dict[str, int], ids: set[str]) -> None:
        if not set(traffic) <= ids:
            raise SplitRefused(f"split {traffic} names models not deployed ({sorted(ids)})")
        if ids and sum(traffic.values()) != 100:
            raise SplitRefused(f"split {traffic} does not sum to 100")
        if not ids and traffic:
            raise SplitRefused(f"split {traffic} on an empty endpoint")
        if any(v < 0 for v in traffic.values()):
            raise SplitRefused(f"split {traffic} has a negative share")

    def upload(self, *, run_id: str, artifact_uri: str, labels: dict[str, str]) -> ModelVersion:
        if run_id not in self.versions:
            self.calls.append(f"upload {run_id}")
            number = str(len(self.versions) + 1)
            self.versions[run_id] = ModelVersion(
                name=f"projects/p/locations/r/models/{self.model}@{number}",
                version_id=number,
                run_id=run_id,
                artifact_uri=artifact_uri,
            )
        self._answer("upload")
        return self.versions[run_id]

    def state(self) -> EndpointState:
        return EndpointState(
            endpoint=self.name, deployed=tuple(self.deployed.values()), traffic=dict(self.traffic)
        )

    def deploy(self, *, version: ModelVersion, traffic: dict[str, int]) -> EndpointState:
        for deployed in self.deployed.values():
            if deployed.model == version.name:
                mine = {deployed.id if k == NEW_DEPLOYMENT else k: v for k, v in traffic.items()}
                return self.set_traffic(mine)
        if NEW_DEPLOYMENT not in traffic:
            raise SplitRefused(f"a deploy's split {traffic} must give the new model a share")
        self.next_id += 1
        new_id = str(self.next_id)
        split = {new_id if k == NEW_DEPLOYMENT else k: v for k, v in traffic.items()}
        self._check(split, {*self.deployed, new_id})
        self.calls.append(f"deploy {version.run_id} {split}")
        self.deployed[new_id] = DeployedModel(new_id, version.name, version.run_id)
        self.traffic = {k: v for k, v in split.items()}
        self._answer("deploy")
        return self.state()

    def set_traffic(self, traffic: dict[str, int]) -> EndpointState:
        self._check(traffic, set(self.deployed))
        self.calls.append(f"set_traffic {traffic}")
        self.traffic = dict(traffic)
        self._answer("set_traffic")
        return self.state()

    def undeploy(self, *, deployed_model_id: str, traffic: dict[str, int]) -> EndpointState:
        if deployed_model_id not in self.deployed:
            return self.state()
        rest = set(self.deployed) - {deployed_model_id}
        self._check(traffic, rest)
        self.calls.append(f"undeploy {deployed_model_id} {traffic}")
        del self.deployed[deployed_model_id]
        self.traffic = dict(traffic)
        self._answer("undeploy")
        return self.state()

    def deployments(self) -> list[str]:
        return [c for c in self.calls if c.startswith("deploy ")]

    def shares_by_run(self) -> dict[str | None, int]:
        runs = {d.id: d.run_id for d in self.deployed.values()}
        return {runs[k]: v for k, v in self.traffic.items() if v}


def seed_succeeded_run(
    store: Any, run_id: str, *, pipeline: str = "penguins", outputs: dict[str, str] | None = None
) -> None:
    """What the stages before promotion leave: the trigger's and the pipeline's records."""
    trigger = StageRecord(
        "trigger", "done", "2026-11-23T05:00:00+00:00", result={"pipeline": pipeline}
    )
    store.write(keys.ledger(run_id, "trigger"), trigger.to_json())
    if outputs is None:
        outputs = {"model": f"file:///models/{run_id}/model"}
    result = {"status": "succeeded", "job_name": run_id, "outputs": outputs}
    record = StageRecord("pipeline", "done", "2026-11-23T05:00:00+00:00", result=result)
    store.write(keys.ledger(run_id, "pipeline"), record.to_json())
