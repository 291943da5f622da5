"""Snapshot benchmark: 10 M rows x 8 mixed columns, three ways, plus stream mode's memory.

1. mlrelay's embedded path (`DuckDbWarehouse.export_snapshot`: COPY to Parquet, then sha256 +
   crc32c of every file and the schema, i.e. everything the manifest needs);
2. the pandas route a team writes by hand (`SELECT * -> DataFrame -> to_parquet`);
3. raw DuckDB `COPY ... TO` with the same Parquet options, and nothing else.

Then the quality gate's cost: the same embedded snapshot, then the expectations' aggregate query
timed apart from the export (goal: <= 10 % of it): five expectations (min_rows, not_null on three
columns, accepted_values, max_null_fraction, fresh_within) in one query, and `unique` on the
10 M distinct ids in a second one, timed on its own (a gate with both runs them as one query).

Each runs in its own fresh process (peak RSS = that process's ru_maxrss, imports done before the
clock starts), `--runs` times; the median wall time is reported. Goals: >= 3x faster than
pandas, <= 1/3 of its peak memory, within 1.1x of raw COPY with both codecs.

Then stream mode (BigQuery Storage Read API -> Parquet -> GCS) against the emulators at 1 M and
10 M rows: the snapshotter process's peak RSS must not grow with the table (goal: the 10 M figure
within 1.25x of the 1 M one). Needs the BigQuery emulator venv (`python tests/install_peers.py`);
`--skip-stream` leaves it out. Run from the repo root: `python bench/snapshot.py`.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
ROWS = 10_000_000
GOALS = {
    "vs_pandas_speed": 3.0,
    "vs_pandas_memory": 1 / 3,
    "vs_copy_time": 1.1,
    "stream": 1.25,
    "gate": 0.10,
}
GATE_EXPECTATIONS = [
    {"min_rows": 1},
    {"not_null": ["id", "user_id", "occurred_at"]},
    {"accepted_values": {"column": "kind", "values": ["search", "view", "cart", "buy", "return"]}},
    {"max_null_fraction": {"column": "price", "fraction": 0.01}},
    {"fresh_within": {"column": "occurred_at", "window": "400d"}},
]
UNIQUE_EXPECTATION = {"unique": ["id"]}  # 10 M distinct ids: timed on its own
EXTRA: dict[str, float] = {}  # figures a child reports beside its wall time
# the options mlrelay's COPY uses (duckdb_warehouse.py), so the comparison isolates its overhead
COPY_OPTIONS = (
    "FORMAT PARQUET, COMPRESSION {codec}, FILENAME_PATTERN 'part-{{i}}', FILE_SIZE_BYTES '256MB'"
)
TABLE_SQL = """
CREATE OR REPLACE TABLE events AS
SELECT
    i AS id,
    (i * 7919) % 100000 AS user_id,
    TIMESTAMP '2026-01-01' + INTERVAL (i % 31536000) SECOND AS occurred_at,
    DATE '2026-01-01' + CAST(i % 365 AS INTEGER) AS day,
    ['search', 'view', 'cart', 'buy', 'return'][1 + i % 5] AS kind,
    ((i * 31) % 100000) / 100.0 AS price,
    CAST(i % 17 AS INTEGER) AS quantity,
    i % 3 = 0 AS returning
FROM range({rows}) AS r(i)
"""

BIGQUERY_TABLE_SQL = """
CREATE OR REPLACE TABLE {table} AS
SELECT
    i AS id,
    MOD(i * 7919, 100000) AS user_id,
    TIMESTAMP_ADD(TIMESTAMP '2026-01-01', INTERVAL MOD(i, 31536000) SECOND) AS occurred_at,
    DATE_ADD(DATE '2026-01-01', INTERVAL MOD(i, 365) DAY) AS day,
    ['search', 'view', 'cart', 'buy', 'return'][OFFSET(MOD(i, 5))] AS kind,
    MOD(i * 31, 100000) / 100.0 AS price,
    MOD(i, 17) AS quantity,
    MOD(i, 3) = 0 AS returning
FROM UNNEST(GENERATE_ARRAY(0, {last})) AS i
"""


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- the three methods, each run in a child process -----------------------------------------


def run_mlrelay(database: Path, out: Path, codec: str = "zstd") -> int:
    from mlrelay.adapters.local_folder import LocalFolderStore
    from mlrelay.ports.protocols import SnapshotPlan
    from mlrelay_snapshotter.duckdb_warehouse import DuckDbWarehouse

    plan = SnapshotPlan("table", "events", None, {}, "snapshots/bench/run/", "bench")
    warehouse = DuckDbWarehouse(database, compression=codec)
    result = warehouse.export_snapshot(plan, LocalFolderStore(out))
    return result.row_count


def run_gate(database: Path, out: Path) -> int:
    """The embedded snapshot, then its expectations: EXTRA holds the two times apart."""
    from datetime import UTC, datetime

    from mlrelay.adapters.local_folder import LocalFolderStore
    from mlrelay.ports.protocols import SnapshotPlan
    from mlrelay.registry import ExpectationSpec
    from mlrelay_snapshotter.duckdb_warehouse import DuckDbWarehouse
    from mlrelay_snapshotter.quality_gate import gate_snapshot

    expectations = [ExpectationSpec.model_validate(e) for e in GATE_EXPECTATIONS]
    plan = SnapshotPlan("table", "events", None, {}, "snapshots/bench/run/", "bench")
    warehouse = DuckDbWarehouse(database)
    store = LocalFolderStore(out)
    began = time.perf_counter()
    result = warehouse.export_snapshot(plan, store)
    EXTRA["export_seconds"] = time.perf_counter() - began
    quality = []
    for name, checks in (
        ("gate", expectations),
        ("unique", [ExpectationSpec.model_validate(UNIQUE_EXPECTATION)]),
    ):
        began = time.perf_counter()
        quality += gate_snapshot(
            checks,
            plan=plan,
            store=store,
            export=result,
            warehouse=warehouse,
            previous_rows=None,
            logical_time=datetime(2026, 12, 1, tzinfo=UTC),
        )
        EXTRA[f"{name}_seconds"] = time.perf_counter() - began
    EXTRA["gate_passed"] = float(all(q["passed"] for q in quality))
    return result.row_count


def run_pandas(database: Path, out: Path) -> int:
    import duckdb

    with duckdb.connect(str(database), read_only=True) as con:
        frame = con.execute("SELECT * FROM events").df()
    out.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(out / "events.parquet", index=False)
    return len(frame)


def run_copy(database: Path, out: Path, codec: str = "zstd") -> int:
    import duckdb

    out.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(database), read_only=True) as con:
        row = con.execute(
            f"COPY (SELECT * FROM events) TO '{out.as_posix()}' "  # noqa: S608
            f"({COPY_OPTIONS.format(codec=codec.upper())}, OVERWRITE)"
        ).fetchone()
    return int(row[0]) if row else 0


def run_stream(spec: str, out: Path) -> int:
    """spec: JSON with the emulator endpoints, bucket and table."""
    from mlrelay.adapters.gcs_store import GcsStore
    from mlrelay.config.snapshot import SnapshotSettings
    from mlrelay.ports.protocols import SnapshotPlan
    from mlrelay_snapshotter.bigquery_warehouse import BigQueryWarehouse
    from mlrelay_snapshotter.warehouses import bigquery_client, bigquery_read_client

    peer = json.loads(spec)
    os.environ["STORAGE_EMULATOR_HOST"] = peer["gcs"]
    config = SnapshotSettings(
        mode="stream",
        bigquery_endpoint=peer["endpoint"],
        bigquery_storage_endpoint=peer["storage_endpoint"],
        job_wait_seconds=1800,
    )
    warehouse = BigQueryWarehouse(
        bigquery_client(peer["project"], config), bigquery_read_client(config), config
    )
    run = f"bench-{peer['rows']}"
    plan = SnapshotPlan(
        "table", peer["table"], None, {}, f"snapshots/bench/{run}/", f"mlrelay-{run}"
    )
    result = warehouse.export_snapshot(plan, GcsStore(peer["bucket"], peer["project"]))
    return result.row_count


def run_writer(spec: str, out: Path) -> int:
    """Stream mode's own half: Arrow batches of 65,536 rows (DuckDB's, as a stand-in for Storage
    Read responses of realistic size) -> Parquet -> the GCS emulator."""
    import duckdb

    from mlrelay.adapters.gcs_store import GcsStore
    from mlrelay_snapshotter.parquet_stream import StreamLayout, write_parquet_files

    peer = json.loads(spec)
    os.environ["STORAGE_EMULATOR_HOST"] = peer["gcs"]
    store = GcsStore(peer["bucket"], peer["project"])
    layout = StreamLayout(256 * 1024 * 1024, 131_072, "zstd")
    with duckdb.connect(peer["database"], read_only=True) as con:
        query = con.sql("SELECT * FROM events LIMIT $rows", params={"rows": int(peer["rows"])})
        reader = query.to_arrow_reader(65_536)
        prefix = f"snapshots/bench/writer-{peer['rows']}/"
        _, rows = write_parquet_files(reader, reader.schema, store.open_write, prefix, layout)
    return rows


METHODS: dict[str, Any] = {
    "mlrelay": run_mlrelay,  # its default codec, zstd
    "copy": run_copy,
    "mlrelay-snappy": lambda db, out: run_mlrelay(db, out, "snappy"),  # pandas' codec
    "copy-snappy": lambda db, out: run_copy(db, out, "snappy"),
    "pandas": run_pandas,  # pyarrow's default codec, snappy
}
NAMES = {
    "mlrelay": "mlrelay embedded (zstd)",
    "copy": "raw duckdb COPY (zstd)",
    "mlrelay-snappy": "mlrelay embedded (snappy)",
    "copy-snappy": "raw duckdb COPY (snappy)",
    "pandas": "pandas -> to_parquet (snappy)",
}


WARM_IMPORTS = {
    "mlrelay": ["duckdb", "pyarrow.parquet", "mlrelay_snapshotter.duckdb_warehouse"],
    "pandas": ["duckdb", "pandas", "pyarrow.parquet"],
    "copy": ["duckdb"],
    "copy-snappy": ["duckdb"],
    "mlrelay-snappy": ["duckdb", "pyarrow.parquet", "mlrelay_snapshotter.duckdb_warehouse"],
    "gate": [
        "duckdb",
        "pyarrow.parquet",
        "mlrelay_snapshotter.duckdb_warehouse",
        "mlrelay_snapshotter.quality_gate",
    ],
    "stream": ["pyarrow.parquet", "mlrelay_snapshotter.bigquery_warehouse"],
    "writer": ["duckdb", "pyarrow.parquet", "mlrelay_snapshotter.parquet_stream"],
}


def child(method: str, arg: str, out: Path) -> None:
    """Time the work, not the imports (cold start is bench/coldstart.py's business)."""
    for module in WARM_IMPORTS[method]:
        importlib.import_module(module)
    began = time.perf_counter()
    if method == "stream":
        rows = run_stream(arg, out)
    elif method == "writer":
        rows = run_writer(arg, out)
    elif method == "gate":
        rows = run_gate(Path(arg), out)
    else:
        rows = METHODS[method](Path(arg), out)
    seconds = time.perf_counter() - began
    size = sum(f.stat().st_size for f in out.rglob("*.parquet")) if out.exists() else 0
    print(
        json.dumps(
            {
                "rows": rows,
                "seconds": seconds,
                "peak_rss_mb": peak_rss_mb(),
                "mb": size / 1e6,
                **EXTRA,
            }
        )
    )


def measure(method: str, arg: str, workdir: Path) -> dict[str, float]:
    out = workdir / f"out-{method}"
    shutil.rmtree(out, ignore_errors=True)
    done = subprocess.run(
        [sys.executable, __file__, "--child", method, arg, str(out)],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )
    if done.returncode != 0:
        raise SystemExit(f"{method} failed:\n{done.stderr[-3000:]}")
    shutil.rmtree(out, ignore_errors=True)
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# --- the embedded comparison -----------------------------------------------------------------


def make_source(database: Path, rows: int) -> None:
    import duckdb

    if database.exists():
        with duckdb.connect(str(database), read_only=True) as con:
            found = con.execute("SELECT count(*) FROM events").fetchone()
        if found and found[0] == rows:
            return
        database.unlink()
    with duckdb.connect(str(database)) as con:
        con.execute(TABLE_SQL.format(rows=int(rows)))


def compare_embedded(workdir: Path, rows: int, runs: int) -> bool:
    database = workdir / f"events-{rows}.duckdb"
    make_source(database, rows)
    samples: dict[str, list[dict[str, float]]] = {method: [] for method in METHODS}
    for _ in range(runs):  # round robin: a busy machine slows every method alike
        for method in METHODS:
            sample = measure(method, str(database), workdir)
            assert sample["rows"] == rows, sample
            samples[method].append(sample)
    figures = {
        method: {
            "seconds": statistics.median(s["seconds"] for s in found),
            "peak_rss_mb": max(s["peak_rss_mb"] for s in found),
            "mb": found[0]["mb"],
        }
        for method, found in samples.items()
    }
    print(f"\n{rows:,} rows x 8 columns -> Parquet (median of {runs} runs, fresh process each)")
    print(f"{'method':<32}{'wall s':>8}{'rows/s':>13}{'peak RSS MB':>13}{'file MB':>9}")
    for method, f in figures.items():
        print(
            f"{NAMES[method]:<32}{f['seconds']:>8.2f}{rows / f['seconds']:>13,.0f}"
            f"{f['peak_rss_mb']:>13.0f}{f['mb']:>9.0f}"
        )
    pandas = figures["pandas"]
    same_codec = pandas["seconds"] / figures["mlrelay-snappy"]["seconds"]
    own_codec = pandas["seconds"] / figures["mlrelay"]["seconds"]
    memory = figures["mlrelay"]["peak_rss_mb"] / pandas["peak_rss_mb"]
    checks = [
        (f"speed vs pandas, same codec: {same_codec:.2f}x", same_codec >= 3, ">= 3x"),
        (f"speed vs pandas, mlrelay's zstd: {own_codec:.2f}x", own_codec >= 3, ">= 3x"),
        (f"memory vs pandas: {memory:.2f} of its peak", memory <= 1 / 3, "<= 0.33"),
    ]
    for codec in ("", "-snappy"):
        overhead = figures[f"mlrelay{codec}"]["seconds"] / figures[f"copy{codec}"]["seconds"]
        checks.append(
            (
                f"time vs raw COPY ({codec.strip('-') or 'zstd'}): {overhead:.2f}x",
                overhead <= GOALS["vs_copy_time"],
                f"<= {GOALS['vs_copy_time']}x",
            )
        )
        paired = statistics.median(
            m["seconds"] / c["seconds"]
            for m, c in zip(samples[f"mlrelay{codec}"], samples[f"copy{codec}"], strict=True)
        )
        print(
            f"  (median of the {runs} per-round ratios, "
            f"{codec.strip('-') or 'zstd'}: {paired:.2f}x)"
        )
    for text, ok, goal in checks:
        print(f"  {text:<44} goal {goal:<8} {'met' if ok else 'MISSED'}")
    return all(ok for _, ok, _ in checks)


def compare_gate(workdir: Path, rows: int, runs: int) -> bool:
    """The expectations' query against the snapshot's own time, in the same process each run."""
    database = workdir / f"events-{rows}.duckdb"
    make_source(database, rows)
    samples = []
    for _ in range(runs):
        sample = measure("gate", str(database), workdir)
        assert sample["rows"] == rows and sample["gate_passed"] == 1.0, sample
        samples.append(sample)
    export = statistics.median(s["export_seconds"] for s in samples)
    print(f"\nthe quality gate on {rows:,} rows (median of {runs} runs, fresh process each)")
    print(f"{'step':<50}{'wall s':>8}{'of snapshot':>13}")
    print(f"{'snapshot (export, checksums, schema)':<50}{export:>8.2f}")
    ok = True
    for name, what in (
        ("gate", f"{len(GATE_EXPECTATIONS)} expectations, one DuckDB query on its files"),
        ("unique", f"unique(id) on {rows:,} distinct ids, alone"),
    ):
        seconds = statistics.median(s[f"{name}_seconds"] for s in samples)
        ratio = statistics.median(s[f"{name}_seconds"] / s["export_seconds"] for s in samples)
        met = ratio <= GOALS["gate"]
        ok = ok and (met or name == "unique")  # unique's price is shown, not held to the goal
        verdict = ("met" if met else "MISSED") if name == "gate" else "(not a goal)"
        print(f"{what:<50}{seconds:>8.2f}{ratio:>12.1%}   goal <= 10% {verdict}")
    return ok


# --- stream mode's memory against the emulators ----------------------------------------------


@contextmanager
def emulators(workdir: Path) -> Iterator[tuple[str, Any]]:
    sys.path.insert(0, str(REPO))
    peers: Any = importlib.import_module("tests.integration.peers")
    with peers.gcs_emulator(workdir) as gcs:
        os.environ["STORAGE_EMULATOR_HOST"] = gcs
        with peers.bigquery_emulator(workdir, gcs, "bench-proj") as bq:
            yield gcs, bq


def compare_stream(workdir: Path, sizes: list[int], database: Path) -> bool:
    from google.cloud import storage  # type: ignore[attr-defined,unused-ignore]

    from mlrelay.config.snapshot import SnapshotSettings
    from mlrelay_snapshotter.warehouses import bigquery_client

    figures, writer = {}, {}
    with emulators(workdir) as (gcs, bq):
        config = SnapshotSettings(bigquery_endpoint=bq.endpoint)
        client = bigquery_client(bq.project, config)
        client.create_dataset("bench", exists_ok=True)
        storage.Client(project=bq.project).create_bucket("bench")
        for rows in sizes:
            table = f"bench.events_{rows}"
            began = time.perf_counter()
            client.query(BIGQUERY_TABLE_SQL.format(table=table, last=int(rows) - 1)).result()
            load = time.perf_counter() - began
            spec = {
                "gcs": gcs,
                "endpoint": bq.endpoint,
                "storage_endpoint": bq.storage_endpoint,
                "project": bq.project,
                "bucket": "bench",
                "table": table,
                "rows": rows,
            }
            result = measure("stream", json.dumps(spec), workdir)
            assert result["rows"] == rows, result
            figures[rows] = result
            print(f"  (loaded {rows:,} rows into the emulator in {load:.1f} s)")
            spec["database"] = str(database)
            result = measure("writer", json.dumps(spec), workdir)
            assert result["rows"] == rows, result
            writer[rows] = result
    print("\nstream mode (Storage Read API -> Parquet -> GCS emulator), snapshotter process only")
    print(f"{'rows':>12}{'wall s':>9}{'rows/s':>14}{'peak RSS MB':>14}")
    for rows, f in figures.items():
        print(
            f"{rows:>12,}{f['seconds']:>9.2f}{rows / f['seconds']:>14,.0f}{f['peak_rss_mb']:>14.0f}"
        )
    ok = growth_check(figures, sizes, "end to end")
    print("(local-bigquery sends 1,000,000 rows per ReadRowsResponse (~50 MB): at 1 M rows the")
    print(" whole table is one message; past it, gRPC reads the next response while one is being")
    print(" converted (~3 copies of it in gRPC's own code), so one more response is in memory;")
    print(" BigQuery's own responses are far smaller)")
    print("\nstream mode's writer alone (65,536-row Arrow batches -> Parquet -> GCS emulator)")
    print(f"{'rows':>12}{'wall s':>9}{'rows/s':>14}{'peak RSS MB':>14}")
    for rows, f in writer.items():
        print(
            f"{rows:>12,}{f['seconds']:>9.2f}{rows / f['seconds']:>14,.0f}{f['peak_rss_mb']:>14.0f}"
        )
    return growth_check(writer, sizes, "writer") and ok


def growth_check(figures: dict[int, dict[str, float]], sizes: list[int], what: str) -> bool:
    growth = figures[sizes[-1]]["peak_rss_mb"] / figures[sizes[0]]["peak_rss_mb"]
    ok = growth <= GOALS["stream"]
    print(
        f"  {what}: peak RSS {sizes[-1]:,} / {sizes[0]:,} rows: {growth:.2f}x   goal <= 1.25x   "
        + ("met" if ok else "MISSED")
    )
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--child", nargs=3, metavar=("METHOD", "ARG", "OUT"), help=argparse.SUPPRESS
    )
    parser.add_argument("--rows", type=int, default=ROWS)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--stream-rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--skip-stream", action="store_true")
    parser.add_argument(
        "--gate-only", action="store_true", help="only the quality gate's cost (no comparisons)"
    )
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "mlrelay-bench"
    )
    args = parser.parse_args()
    if args.child:
        method, arg, out = args.child
        child(method, arg, Path(out))
        return
    args.workdir.mkdir(parents=True, exist_ok=True)
    print(f"machine: {os.cpu_count()} cores; python {sys.version.split()[0]}")
    if args.gate_only:
        sys.exit(0 if compare_gate(args.workdir, args.rows, args.runs) else 1)
    ok = compare_embedded(args.workdir, args.rows, args.runs)
    ok = compare_gate(args.workdir, args.rows, args.runs) and ok
    if not args.skip_stream:
        database = args.workdir / f"events-{args.rows}.duckdb"
        ok = compare_stream(args.workdir, args.stream_rows, database) and ok
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
