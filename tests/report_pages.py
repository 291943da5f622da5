"""What the `mlrelay report` tests share: a pipeline history with every kind of run in it, and a
reader of the page's runs table (from the generated HTML or from the DOM Chromium rendered)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

from mlrelay.history import RunSummary, write_summary
from mlrelay.ports.protocols import ObjectStore

HOSTILE_RUN = "penguins-20261128-<script>alert(1)</script>"
HOSTILE_ERROR = 'task "train" failed: <script>document.title="owned"</script> & more'
STATUSES = (
    "succeeded",
    "succeeded",
    "succeeded_with_regression",
    "failed",
    "succeeded",
    "cancelled",
)


def quality(i: int) -> list[dict[str, object]]:
    return [
        {
            "name": "enough_rows",
            "check": "min_rows",
            "column": None,
            "severity": "error",
            "passed": True,
            "observed": 344 - 20 * i,
            "expected": 100,
            "message": f"{344 - 20 * i} rows >= 100",
        },
        {
            "name": "sex_not_null",
            "check": "not_null",
            "column": "sex",
            "severity": "warn",
            "passed": i % 2 == 0,
            "observed": i,
            "expected": 0,
            "message": f"{i} null(s) in <sex>",
        },
    ]


def sample_history(pipeline: str = "penguins") -> list[RunSummary]:
    """Six runs a day apart: successes, a regression, a failure before its snapshot (no rows, no
    metrics, a hostile run id and error), a cancelled one; metric `log_loss` appears from the
    third run on."""
    start = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)
    runs = []
    for i, status in enumerate(STATUSES):
        finished = status not in ("failed", "cancelled")
        metrics = {"accuracy": 0.95 - 0.0125 * i, "f1": 0.9 + 0.01 * i}
        if i >= 2:
            metrics["log_loss"] = 0.31 + 0.004 * i
        runs.append(
            RunSummary(
                run_id=HOSTILE_RUN if status == "failed" else f"{pipeline}-2026112{5 + i}-{i:04x}",
                pipeline=pipeline,
                status=status,  # type: ignore[arg-type]
                logical_time=start + timedelta(days=i),
                duration_seconds=None if status == "cancelled" else 41.5 + 37.25 * i,
                rows=None if status == "failed" else 344 - 20 * i + 1000 * (i == 4),
                metrics=metrics if finished else {},
                parameters={"n_estimators": 100 + 10 * i},
                quality=[] if status == "failed" else quality(i),
                error=HOSTILE_ERROR if status == "failed" else None,
                failed_task="train" if status == "failed" else None,
                regressions=["accuracy fell by 0.0125 (max_drop 0.01)"]
                if status == "succeeded_with_regression"
                else [],
            )
        )
    return runs


def write_history(store: ObjectStore, runs: list[RunSummary]) -> None:
    for run in runs:
        write_summary(store, run)


@dataclass
class RunsTable(HTMLParser):
    """The rows of `<table id="runs">`: each a dict of header -> cell text, plus `data-value`
    (the exact figure) under `<header>@value` where the cell has one."""

    rows: list[dict[str, str]] = field(default_factory=list)
    _headers: list[str] = field(default_factory=list)
    _in_table: bool = False
    _cell: list[str] | None = None
    _row: list[tuple[str, str | None]] = field(default_factory=list)
    _value: str | None = None

    def __post_init__(self) -> None:
        super().__init__(convert_charrefs=True)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "table":
            self._in_table = found.get("id") == "runs"
        elif self._in_table and tag == "tr":
            self._row = []
        elif self._in_table and tag in ("td", "th"):
            self._cell, self._value = [], found.get("data-value")
        elif self._in_table and tag == "br" and self._cell is not None:
            self._cell.append("\n")

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag: str) -> None:
        if not self._in_table:
            return
        if tag in ("td", "th") and self._cell is not None:
            self._row.append(("".join(self._cell).strip(), self._value))
            self._cell = None
        elif tag == "tr":
            if not self._headers:
                self._headers = [text for text, _ in self._row]
            else:
                row: dict[str, str] = {}
                for header, (text, value) in zip(self._headers, self._row, strict=True):
                    row[header] = text
                    if value is not None:
                        row[f"{header}@value"] = value
                self.rows.append(row)
        elif tag == "table":
            self._in_table = False


def runs_table(page: str) -> list[dict[str, str]]:
    parser = RunsTable()
    parser.feed(page)
    return parser.rows


def seconds_of(text: str) -> float:
    """'41.5 s' / '4 m 05 s' / '2 h 03 m' back to seconds (to the precision shown)."""
    parts = text.split()
    units = {"s": 1, "m": 60, "h": 3600}
    return sum(float(n) * units[u] for n, u in zip(parts[::2], parts[1::2], strict=True))
