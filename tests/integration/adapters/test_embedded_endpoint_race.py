"""Two processes updating the embedded endpoint at once (each a read-modify-write under its
lock file): neither loses the other's deployed model."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path
from typing import Any

from mlrelay.adapters.embedded_endpoint import EmbeddedEndpoint, endpoint_file, read_endpoint
from mlrelay.ports.protocols import NEW_DEPLOYMENT
from mlrelay.registry.specs import PromotionSpec

SPEC = PromotionSpec(model="penguins", endpoint="penguins-endpoint")


RUNS_EACH = 25


def _deploy_many(home: str, worker: int, start: Any) -> None:
    """Upload and deploy RUNS_EACH runs of its own, each a read-modify-write racing the other."""
    endpoint = EmbeddedEndpoint(Path(home), SPEC)
    start.wait(timeout=60)  # both processes imported: they race from here
    for index in range(RUNS_EACH):
        folder = Path(home).parent / f"w{worker}-{index}"
        folder.mkdir(parents=True)
        (folder / "model.pkl").write_bytes(b"x")
        run_id = f"run-{worker}-{index}"
        version = endpoint.upload(run_id=run_id, artifact_uri=str(folder), labels={})
        others = dict.fromkeys((d.id for d in endpoint.state().deployed), 0)
        endpoint.deploy(version=version, traffic={**others, NEW_DEPLOYMENT: 100})


def test_two_processes_uploading_and_deploying_at_once_lose_no_update(tmp_path: Path) -> None:
    home = tmp_path / "home"
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(2)
    workers = [context.Process(target=_deploy_many, args=(str(home), i, start)) for i in (1, 2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0

    runs = {f"run-{w}-{i}" for w in (1, 2) for i in range(RUNS_EACH)}
    versions = json.loads((home / "models" / SPEC.model / "versions.json").read_text())
    assert set(versions) == runs
    assert sorted(map(int, versions.values())) == list(range(1, len(runs) + 1))  # no id twice
    state = read_endpoint(home, SPEC.endpoint)
    assert state is not None
    assert {d.run_id for d in state.deployed} == runs
    assert sum(state.traffic.values()) == 100
    assert json.loads(endpoint_file(home, SPEC.endpoint).read_text())["endpoint"] == SPEC.endpoint
