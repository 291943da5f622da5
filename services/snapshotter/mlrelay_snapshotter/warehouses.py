"""Pick the snapshot engine for the configured mode."""

from __future__ import annotations

from mlrelay.errors import PermanentError
from mlrelay.ports import Warehouse
from mlrelay.wiring import Ports


def build_warehouse(ports: Ports) -> Warehouse:
    if ports.settings.mode == "embedded":
        from mlrelay_snapshotter.duckdb_warehouse import DuckDbWarehouse

        return DuckDbWarehouse(ports.settings.warehouse_path)
    raise PermanentError(
        "MLRELAY_MODE",
        "the BigQuery snapshot engine is not built yet (tracked in issue 6)",
        "run the snapshotter in embedded mode until it lands",
    )
