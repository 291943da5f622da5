"""The demo warehouse: DuckDB seeded with the Palmer penguins data (from PyPI `palmerpenguins`)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

DEMO_TABLE = "penguins"


def penguins_csv() -> Path:
    spec = importlib.util.find_spec("palmerpenguins")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("palmerpenguins is not installed: pip install palmerpenguins")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "penguins.csv"


def seed_demo_warehouse(database: Path) -> bool:
    """Create the `penguins` table on first use; True when it was created now."""
    import duckdb

    database.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(database)) as con:
        exists = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [DEMO_TABLE]
        ).fetchone()
        if exists and exists[0]:
            return False
        con.execute(
            # the table name is a constant of this module; the CSV path is bound
            f"CREATE TABLE {DEMO_TABLE} AS "  # noqa: S608
            "SELECT * FROM read_csv(?, header = true, nullstr = 'NA')",
            [str(penguins_csv())],
        )
    return True
