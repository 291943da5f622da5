"""Cancel on a KFP host: the deployer's `mlrelay-cancel` consumer, the real `kfp.Client`, and
the loopback v2beta1 API (tests/fakes/kfp.py), which moves a run to CANCELING on terminate and
refuses to terminate a finished one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mlrelay.config.settings import Settings
from mlrelay.history import RunSummary, write_summary
from mlrelay.ports.container import use_ports
from mlrelay.registry import Registry, load_registry
from mlrelay.registry.backends import KfpOptions
from mlrelay_deployer.kfp_backend import KfpHostBackend
from mlrelay_tools.local.runtime import LocalRuntime
from tests.fakes.fault_proxy import LOSE, FaultProxy
from tests.fakes.kfp import PREFIX, FakeKfp
from tests.helpers import REGISTRY, Capture, RecordingChat, make_runtime
from tests.integration.deployer.cancel_commands import ASKED_AT, cancel_command, known_run, send
from tests.integration.deployer.vertex_deploys import RUN_ID, deploy


@pytest.fixture
def kfp_host() -> Iterator[FakeKfp]:
    with FakeKfp() as fake:
        yield fake


@pytest.fixture
def proxy(kfp_host: FakeKfp) -> Iterator[FaultProxy]:
    proxy = FaultProxy(kfp_host.host.removeprefix("http://"), "kfp").start()
    yield proxy
    proxy.stop()


def kfp_registry(host: str) -> Registry:
    registry = load_registry(REGISTRY)
    options = KfpOptions(host=host, pipeline_root="gs://mlrelay-test/kfp-root")
    spec = registry.pipelines["penguins"].model_copy(update={"backend": "kfp", "kfp": options})
    return registry.model_copy(update={"pipelines": {"penguins": spec}})


@pytest.fixture
def runtime(
    settings: Settings, channel: RecordingChat, proxy: FaultProxy
) -> Iterator[LocalRuntime]:
    registry = kfp_registry(proxy.url)
    backend = KfpHostBackend(
        registry.pipelines["penguins"].kfp,  # type: ignore[arg-type]
        "projects/test-proj/topics/mlrelay-lifecycle",
        backoff_seconds=0.01,
    )
    runtime = make_runtime(
        settings, channel, registry=registry, pipeline_backends={"penguins": backend}
    )
    known_run(runtime, RUN_ID)
    deploy(runtime)
    yield runtime
    use_ports(None)


@pytest.fixture
def events(runtime: LocalRuntime) -> Capture:
    capture = Capture(runtime.settings.topics.lifecycle)
    runtime.bus.listen(capture)
    return capture


def terminates(fake: FakeKfp) -> list[str]:
    return [r.path for r in fake.requests if r.method == "POST" and r.path.endswith(":terminate")]


def the_run(fake: FakeKfp) -> dict[str, object]:
    [run] = fake.runs.values()
    return run


def test_cancel_terminates_the_kfp_run_the_deployer_started(
    runtime: LocalRuntime, events: Capture, kfp_host: FakeKfp
) -> None:
    run_id = str(the_run(kfp_host)["run_id"])

    send(runtime, cancel_command(RUN_ID))

    assert terminates(kfp_host) == [f"{PREFIX}/runs/{run_id}:terminate"]
    assert the_run(kfp_host)["state"] == "CANCELING"
    [event] = [e for e in events.events if e.status == "cancelled"]
    assert event.details["command"] == {
        "action": "cancel",
        "requested_by": "slack:U0ONCALL",
        "requested_at": ASKED_AT.isoformat(),
        "source": "slack",
    }
    assert event.links["kfp"].endswith(f"/#/runs/details/{run_id}")


def test_the_same_command_three_times_terminates_once(
    runtime: LocalRuntime, events: Capture, kfp_host: FakeKfp
) -> None:
    send(runtime, cancel_command(RUN_ID), times=3)

    assert len(terminates(kfp_host)) == 1
    assert [e.event_type for e in events.events if e.status == "cancelled"] == [
        "pipeline.cancelled"
    ]


def test_a_lost_terminate_answer_is_not_terminated_twice(
    runtime: LocalRuntime, events: Capture, kfp_host: FakeKfp, proxy: FaultProxy
) -> None:
    proxy.fail_next(LOSE, path=":terminate")

    send(runtime, cancel_command(RUN_ID))

    assert proxy.pending_faults() == 0
    # the backend's own retry reads the run first: CANCELING, so no second terminate
    assert len(terminates(kfp_host)) == 1
    assert the_run(kfp_host)["state"] == "CANCELING"
    assert [e.event_type for e in events.events if e.status == "cancelled"] == [
        "pipeline.cancelled"
    ]
    assert not [e for e in events.events if e.status == "rejected"]


def test_cancel_of_a_finished_run_calls_nothing_and_says_its_state(
    runtime: LocalRuntime, events: Capture, kfp_host: FakeKfp
) -> None:
    write_summary(
        runtime.store,
        RunSummary(run_id=RUN_ID, pipeline="penguins", status="failed", finished_at=ASKED_AT),
    )
    before = len(kfp_host.requests)

    send(runtime, cancel_command(RUN_ID))

    assert len(kfp_host.requests) == before  # not even a read
    [rejected] = [e for e in events.events if e.status == "rejected"]
    assert f"{RUN_ID} has already ended (failed)" in str(rejected.error)


def test_a_run_the_host_says_has_finished_is_not_terminated(
    runtime: LocalRuntime, events: Capture, kfp_host: FakeKfp
) -> None:
    the_run(kfp_host)["state"] = "SUCCEEDED"

    send(runtime, cancel_command(RUN_ID))

    assert terminates(kfp_host) == []
    [rejected] = [e for e in events.events if e.status == "rejected"]
    assert "no longer running on the KFP host (SUCCEEDED)" in str(rejected.error)
