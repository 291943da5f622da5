"""List prices the cost bench converts its counts with (USD, no free tier, no discounts).

Each price names where it was read and when. Free tiers (Cloud Run's monthly vCPU-seconds,
Pub/Sub's first 10 GiB, Cloud Scheduler's 3 jobs per billing account, BigQuery's first TiB) are
ignored on purpose: the bench prices the marginal run at list price. Cloud Run figures are Tier 1
regions, request-based billing (CPU only while a request is handled), which is how Cloud Run
functions (2nd gen) are billed.
"""

from __future__ import annotations

from dataclasses import dataclass

READ = "2026-12-01"  # the day the sources below were read (stored copies, search tool)


@dataclass(frozen=True)
class Price:
    value: float  # USD
    unit: str
    source: str  # where the figure was read; says so when it is not Google's own page
    read: str = READ


RUN_PRICING = "https://cloud.google.com/run/pricing (Tier 1, CPU only during requests)"
PRICES: dict[str, Price] = {
    "run_vcpu_second": Price(0.000024, "vCPU-second", RUN_PRICING),
    "run_gib_second": Price(0.0000025, "GiB-second", RUN_PRICING),
    "run_request": Price(0.40 / 1_000_000, "request ($0.40 per million)", RUN_PRICING),
    "pubsub_tib": Price(
        40.0,
        "TiB of publish or delivery throughput (1,000-byte minimum per request)",
        "https://cloud.google.com/pubsub/pricing",
    ),
    "gcs_class_a": Price(
        0.005 / 1000,
        "Class A operation ($0.005 per 1,000; $0.05 per 10,000; Standard, regional)",
        "https://cloud.google.com/storage/pricing-examples",
    ),
    "gcs_class_b": Price(
        0.0004 / 1000,
        "Class B operation ($0.0004 per 1,000; $0.004 per 10,000; Standard, regional)",
        "https://cloud.google.com/storage/pricing-examples",
    ),
    "gcs_gb_month": Price(
        0.020,
        "GB-month, Standard storage (us-east1)",
        "https://cloud.google.com/storage/pricing-examples",
    ),
    "bigquery_tib": Price(
        6.25,
        "TiB processed, on demand (10 MB minimum per query)",
        "third-party note https://adriennevermorel.com/notes/bigquery-on-demand-billing-mechanics/"
        " (Google's https://cloud.google.com/bigquery/pricing copy read was an old one at $5/TB)",
    ),
    "scheduler_job_month": Price(
        0.10,
        "job per month (31 days; paused jobs count)",
        "https://cloud.google.com/scheduler/pricing",
    ),
    "vertex_pipeline_run": Price(
        0.03,
        "pipeline run (execution fee; the run's compute is extra)",
        "https://cloud.google.com/vertex-ai/pricing as transcribed in"
        " github.com/api-evangelist/google-cloud-automl plans/google-cloud-automl-plans-pricing.yml"
        " ('Starting at $0.03 per pipeline run', read 2026-09-20);"
        " Google's page itself was not reached",
    ),
    "composer3_dcu_hour": Price(
        0.06,
        "DCU-hour (Cloud Composer 3, $0.06 per 1,000 milli DCU-hours)",
        "https://cloud.google.com/composer/pricing",
    ),
    "composer3_smallest_month": Price(
        300.0,
        "month, the smallest Cloud Composer 3 environment at idle"
        " (low end of $300-400, pay as you go)",
        "third-party note https://adriennevermorel.com/notes/cloud-composer-cost-and-capabilities/;"
        " Google's page gives $0.06 per DCU-hour but the DCUs of the smallest (Small preset)"
        " environment were not found, so this is not derived from it",
    ),
}

# Cloud Run functions: the CPU a memory setting gives when `cpu` is not set (locals.tf: null)
# https://cloud.google.com/functions/docs/configuring/memory (read 2026-12-01)
DEFAULT_CPU_FOR_MEMORY_MIB: dict[int, float] = {
    128: 0.083,
    256: 0.167,
    512: 0.333,
    1024: 0.583,
    2048: 1.0,
    4096: 2.0,
    8192: 2.0,
    16384: 4.0,
    32768: 8.0,
}
HOURS_PER_MONTH = 730
