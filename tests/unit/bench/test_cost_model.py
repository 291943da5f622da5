"""The cost bench's pure rules: GCS operation classes, Pub/Sub's 1,000-byte minimum, Cloud Run's
100 ms rounding, counts x list prices -> dollars, idle schedules, function specs from locals.tf."""

from __future__ import annotations

import base64
import json
from collections import Counter

import pytest

from bench.cost_model import (
    Counts,
    FunctionSpec,
    billed_seconds,
    dollars,
    function_specs,
    gcs_class,
    gcs_kind,
    idle_monthly,
    message_bytes,
    pubsub_billable,
    push_message_bytes,
)
from bench.prices import PRICES
from tests.helpers import REPO


@pytest.mark.parametrize(
    ("method", "target", "expected"),
    [
        ("POST", "/upload/storage/v1/b/bkt/o?uploadType=multipart&name=a", "A"),  # insert
        ("GET", "/storage/v1/b/bkt/o?prefix=runs/", "A"),  # objects.list
        ("POST", "/storage/v1/b/bkt/o/a/rewriteTo/b/bkt/o/b", "A"),  # rewrite
        ("POST", "/storage/v1/b/bkt/o/a/copyTo/b/bkt/o/b", "A"),  # copy
        ("POST", "/storage/v1/b/bkt/o/c/compose", "A"),  # compose
        ("PATCH", "/storage/v1/b/bkt/o/a", "A"),  # patch
        ("GET", "/storage/v1/b", "A"),  # buckets.list
        ("GET", "/storage/v1/b/bkt/o/runs%2Fa.json", "B"),  # objects.get (metadata)
        ("GET", "/download/storage/v1/b/bkt/o/runs%2Fa.json?alt=media", "B"),  # media
        ("GET", "/storage/v1/b/bkt/o/a?alt=media", "B"),
        ("GET", "/storage/v1/b/bkt", "B"),  # buckets.get
        ("DELETE", "/storage/v1/b/bkt/o/a", "free"),
    ],
)
def test_gcs_requests_fall_in_the_class_gcs_pricing_gives_them(
    method: str, target: str, expected: str
) -> None:
    assert gcs_class(method, target) == expected


def test_gcs_requests_are_named_by_kind_for_the_breakdown() -> None:
    assert gcs_kind("POST", "/upload/storage/v1/b/bkt/o?uploadType=media") == "upload (insert)"
    assert gcs_kind("GET", "/storage/v1/b/bkt/o?prefix=a") == "list"
    assert gcs_kind("GET", "/download/storage/v1/b/bkt/o/a?alt=media") == "get media"
    assert gcs_kind("GET", "/storage/v1/b/bkt/o/a") == "get metadata"
    assert gcs_kind("POST", "/storage/v1/b/bkt/o/a/rewriteTo/b/bkt/o/b") == "rewriteTo"
    assert gcs_kind("DELETE", "/storage/v1/b/bkt/o/a") == "delete"


def test_pubsub_bills_at_least_1000_bytes_a_request() -> None:
    assert pubsub_billable(0) == 1000
    assert pubsub_billable(999) == 1000
    assert pubsub_billable(1000) == 1000
    assert pubsub_billable(1001) == 1001


def test_message_volume_is_data_attributes_timestamp_and_id() -> None:
    assert message_bytes(b"abcd", {"k": "vv"}, "123") == 4 + 3 + 20 + 3
    push = json.dumps(
        {
            "message": {
                "data": base64.b64encode(b"abcd").decode(),
                "attributes": {"k": "vv"},
                "messageId": "123",
            },
            "subscription": "projects/p/subscriptions/s",
        }
    ).encode()
    assert push_message_bytes(push) == 30  # the envelope itself is not billed


def test_request_time_is_billed_in_100_ms_steps_rounded_up() -> None:
    assert billed_seconds(0.0) == pytest.approx(0.1)
    assert billed_seconds(0.1) == pytest.approx(0.1)
    assert billed_seconds(0.1001) == pytest.approx(0.2)
    assert billed_seconds(2.34) == pytest.approx(2.4)


def test_counts_times_list_prices_give_dollars() -> None:
    specs = {"f": FunctionSpec(memory_gib=0.5, cpu=0.333)}
    counts = Counts(
        runs=1,
        published_bytes=Counter({"t": 1000}),
        delivered_bytes=Counter({"t": 2**40 - 1000}),
        invocations=Counter({"f": 2}),
        billed={"f": 10.0},
        gcs=Counter({"A": 1000, "B": 1000, "free": 5}),
        bigquery_jobs=1,
        bigquery_bytes=0,
    )
    usd = dollars(counts, specs)
    assert usd["functions: vCPU"] == pytest.approx(10 * 0.333 * 0.000024)
    assert usd["functions: memory"] == pytest.approx(10 * 0.5 * 0.0000025)
    assert usd["functions: requests"] == pytest.approx(2 * 0.40 / 1e6)
    assert usd["Pub/Sub throughput"] == pytest.approx(40.0)  # one TiB in all
    assert usd["GCS class A"] == pytest.approx(0.005)
    assert usd["GCS class B"] == pytest.approx(0.0004)
    # a job the emulator reports 0 bytes for is billed BigQuery's 10 MB minimum
    assert usd["BigQuery on demand"] == pytest.approx(10 * 2**20 / 2**40 * 6.25)


def test_idle_schedules_cost_their_cloud_scheduler_jobs_only() -> None:
    assert idle_monthly(10) == pytest.approx(1.0)
    assert idle_monthly(100) == pytest.approx(10.0)


def test_every_price_names_its_source_and_the_day_it_was_read() -> None:
    for name, price in PRICES.items():
        assert price.value > 0, name
        assert "http" in price.source, name
        assert price.read, name


def test_function_specs_are_read_from_locals_tf() -> None:
    specs = function_specs(REPO / "infra/modules/mlrelay/locals.tf")
    assert set(specs) == {
        "mlrelay-trigger",
        "mlrelay-attempts",
        "mlrelay-snapshotter",
        "mlrelay-deployer",
        "mlrelay-cancel",
        "mlrelay-approvals",
        "mlrelay-promotions",
        "mlrelay-promotion-commands",
        "mlrelay-job-events",
        "mlrelay-watchdog",
        "mlrelay-notifier",
        "mlrelay-dead-letters",
    }
    assert specs["mlrelay-trigger"] == FunctionSpec(0.5, 0.333)  # 512Mi, cpu null
    assert specs["mlrelay-snapshotter"] == FunctionSpec(1.0, 0.583)  # 1Gi, cpu null
    assert specs["mlrelay-notifier"] == FunctionSpec(0.5, 1.0)  # 512Mi, cpu "1"
