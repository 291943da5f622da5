"""What the `mlrelay report` tests share: a pipeline history with every kind of run in it, and a
reader of the page's runs table (from the generated HTML or from the DOM Chromium rendered)."""

from __future__ import annotations

import struct
import zlib
from collections import Counter
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
                run_id=HOSTILE_RUN
                if status == "failed"
                else f"{pipeline}-{start + timedelta(days=i):%Y%m%d}-{i:04x}",
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


@dataclass(frozen=True)
class Png:
    width: int
    height: int
    step: int  # bytes per pixel: 3 (RGB) or 4 (RGBA)
    rows: list[bytes]  # the unfiltered scanlines

    def colours(self, top: int = 0, bottom: int | None = None) -> Counter[tuple[int, int, int]]:
        """How many pixels of each colour (alpha dropped) between rows `top` and `bottom`."""
        counted: Counter[tuple[int, int, int]] = Counter()
        s = self.step
        for line in self.rows[top:bottom]:
            counted.update(zip(line[0::s], line[1::s], line[2::s], strict=True))
        return counted


def decode_png(data: bytes) -> Png:
    """An 8-bit RGB or RGBA PNG (what Chromium's screenshots are), decoded with zlib alone."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"bad CRC in {kind!r}"
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
    step = 3 if colour == 2 else 4
    stride = width * step
    raw = zlib.decompress(idat)
    assert len(raw) == height * (stride + 1), "truncated image data"
    low, high = int.from_bytes(b"\x7f" * stride), int.from_bytes(b"\x80" * stride)
    previous = bytes(stride)
    rows = []
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)]
        if kind == 2:  # up, most of Chromium's rows: a bytewise sum without carries, at once
            a, b = int.from_bytes(line), int.from_bytes(previous)
            line = (((a & low) + (b & low)) ^ ((a ^ b) & high)).to_bytes(stride)
        elif kind != 0:
            line = _unfilter(kind, bytearray(line), previous, step)
        rows.append(line)
        previous = line
    return Png(width, height, step, rows)


def _unfilter(kind: int, line: bytearray, previous: bytes, step: int) -> bytes:
    for i in range(len(line)):
        left = line[i - step] if i >= step else 0
        up = previous[i]
        if kind == 1:
            line[i] = (line[i] + left) & 0xFF
        elif kind == 3:
            line[i] = (line[i] + (left + up) // 2) & 0xFF
        elif kind == 4:
            corner = previous[i - step] if i >= step else 0
            p = left + up - corner
            pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
            line[i] = (
                line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)
            ) & 0xFF
        else:
            raise AssertionError(f"unknown PNG filter {kind}")
    return bytes(line)
