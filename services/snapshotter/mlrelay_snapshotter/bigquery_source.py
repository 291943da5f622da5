"""What BigQuery runs for a snapshot: the source's SQL, pinned to a point in time, with every
request value bound as a query parameter (never formatted into the SQL)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from mlrelay.errors import PermanentError
from mlrelay.ports.protocols import SnapshotPlan
from mlrelay.sql_parameters import parameter_names

SNAPSHOT_TIME = "snapshot_time"  # the built-in parameter a query may use to pin its reads
_TABLE = re.compile(r"^(?:[A-Za-z0-9_:.-]+\.)?[A-Za-z0-9_-]+\.[A-Za-z0-9_$-]+$")
FUTURE_SLACK = timedelta(minutes=5)


@dataclass(frozen=True)
class SourceQuery:
    sql: str
    parameters: list[Any]  # google.cloud.bigquery query parameters
    point_in_time: str  # what the manifest says about how the read was pinned


def read_time(plan: SnapshotPlan, now: datetime) -> datetime:
    """The instant to read at: the run's logical time (a slot a few seconds ahead of the clock
    reads at the clock; one further ahead is a mistake)."""
    wanted = plan.snapshot_time or now
    if wanted > now + FUTURE_SLACK:
        raise PermanentError(
            "logical_time",
            f"{wanted.isoformat()} is in the future; BigQuery cannot read at it",
            "trigger the run with a logical time in the past",
        )
    return min(wanted, now)


def scalar_parameter(name: str, value: Any) -> Any:
    from google.cloud import bigquery

    if isinstance(value, bool):
        kind = "BOOL"
    elif isinstance(value, int):
        kind = "INT64"
    elif isinstance(value, float):
        kind = "FLOAT64"
    elif isinstance(value, datetime):
        kind = "TIMESTAMP"
    elif isinstance(value, str):
        kind = "STRING"
    else:
        raise PermanentError(
            f"parameters.{name}", f"{type(value).__name__} cannot be a query parameter"
        )
    return bigquery.ScalarQueryParameter(name, kind, value)


def source_query(plan: SnapshotPlan, now: datetime | None = None) -> SourceQuery:
    at = read_time(plan, now or datetime.now(UTC))
    pinned = f"FOR SYSTEM_TIME AS OF {at.isoformat()}"
    if plan.source_kind == "table":
        table = plan.table or ""
        if not _TABLE.match(table):
            raise PermanentError(
                "source.table",
                f"{table!r} is not a BigQuery table name",
                "write it as dataset.table or project.dataset.table",
            )
        sql = f"SELECT * FROM `{table}` FOR SYSTEM_TIME AS OF @{SNAPSHOT_TIME}"  # noqa: S608
        return SourceQuery(sql, [scalar_parameter(SNAPSHOT_TIME, at)], pinned)
    sql = plan.sql or ""
    used = parameter_names(sql)
    params = []
    for name in used:
        if name == SNAPSHOT_TIME:
            continue
        if name not in plan.query_parameters:
            raise PermanentError(
                "source.query_parameters", f"@{name} has no value", "list it in query_parameters"
            )
        params.append(scalar_parameter(name, plan.query_parameters[name]))
    if SNAPSHOT_TIME in used:
        params.append(scalar_parameter(SNAPSHOT_TIME, at))
        return SourceQuery(sql, params, f"@{SNAPSHOT_TIME} = {at.isoformat()}")
    return SourceQuery(sql, params, "read_at_export (the query does not use @snapshot_time)")


def staging_table_id(project: str, dataset: str, run_id: str) -> str:
    return f"{project}.{dataset}.{run_id.replace('-', '_')}"
