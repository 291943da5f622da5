"""`mlrelay report` as a user runs it (a real subprocess), and its page opened in headless
Chromium (Debian's `chromium`): the screenshot shows the charts drawn, and the numbers of the
rendered page are those of the run summaries in the bucket. Then the same from a GCS bucket (the
GCS emulator), by setting and by `--bucket gs://`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from mlrelay.adapters.local_folder import LocalFolderStore
from mlrelay.history import RunSummary, list_summaries
from mlrelay_tools.report.charts import STATUS_COLOURS
from tests.helpers import REGISTRY
from tests.integration.google_backend import PROJECT, new_bucket
from tests.integration.peers import missing_peer
from tests.report_pages import (
    HOSTILE_RUN,
    decode_png,
    runs_table,
    sample_history,
    seconds_of,
    write_history,
)

MLRELAY = str(Path(sys.executable).parent / "mlrelay")
WINDOW = (1000, 1800)  # every chart and the quality tables in view
LINE_BLUE = (0x15, 0x65, 0xC0)


def rgb(hex_colour: str) -> tuple[int, int, int]:
    return int(hex_colour[1:3], 16), int(hex_colour[3:5], 16), int(hex_colour[5:7], 16)


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    binary = shutil.which("chromium")
    if binary is None:
        missing_peer("chromium (Debian package `chromium`)")
    profile = tmp_path / "chromium-profile"  # its own profile: runs side by side don't share one
    return subprocess.run(
        [
            str(binary),
            "--headless",
            "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--force-device-scale-factor=1",
            f"--user-data-dir={profile}",
            *args,
        ],
        capture_output=True,
        timeout=180,
        check=True,
    )


def report(home: Path, out: Path, *args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [MLRELAY, "report", "penguins", "--output", str(out), *args],
        env={
            **os.environ,
            "MLRELAY_HOME": str(home),
            "MLRELAY_REGISTRY": str(REGISTRY),
            **(env or {}),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def screenshot(tmp_path: Path, page: Path, name: str) -> Counter[tuple[int, int, int]]:
    shot = tmp_path / f"{name}.png"
    chromium(
        tmp_path, f"--screenshot={shot}", f"--window-size={WINDOW[0]},{WINDOW[1]}", page.as_uri()
    )
    image = decode_png(shot.read_bytes())
    assert (image.width, image.height) == WINDOW
    return image.colours()


def near(colours: Counter[tuple[int, int, int]], target: tuple[int, int, int]) -> int:
    """Pixels within a small distance of `target` (anti-aliased edges count too)."""
    return sum(
        n
        for c, n in colours.items()
        if sum(abs(a - b) for a, b in zip(c, target, strict=True)) <= 30
    )


def test_the_page_in_chromium_draws_the_charts_and_shows_the_history_numbers(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    store = LocalFolderStore(home / "bucket")
    write_history(store, sample_history())
    page = tmp_path / "report.html"
    assert report(home, page) == f"{page} (6 runs of penguins)\n"

    # the picture: every status colour drawn as marks, the metric lines, a page mostly not blank
    colours = screenshot(tmp_path, page, "history")
    total = WINDOW[0] * WINDOW[1]
    # measured on this history at this size (2026-12-01): 11009 green, 3792 amber, 3676 red,
    # 1874 grey-blue pixels, 1319 of line blue; a legend swatch is 132 and a timeline mark 784, so
    # each floor below fails when that status's bars (or the metric lines) are not drawn
    floors = {
        "succeeded": 6000,
        "succeeded_with_regression": 2000,
        "failed": 2000,
        "cancelled": 1000,
    }
    for status, colour in STATUS_COLOURS.items():
        assert colours[rgb(colour)] >= floors[status], f"{status} marks not drawn"
    assert near(colours, LINE_BLUE) >= 800  # three metric trend lines
    drawn = total - colours[(255, 255, 255)]
    assert drawn >= total // 50
    # against the same page with no history: none of the chart colours at all
    empty = tmp_path / "empty.html"
    report(tmp_path / "empty-home", empty)
    blank = screenshot(tmp_path, empty, "empty")
    assert all(blank[rgb(c)] == 0 for c in STATUS_COLOURS.values()) and near(blank, LINE_BLUE) == 0

    # the numbers: the DOM Chromium rendered, against the summaries read back from the bucket
    dom = chromium(tmp_path, "--dump-dom", page.as_uri()).stdout.decode()
    assert "<script" not in dom.lower()  # the hostile run id and error stayed text
    assert "<title>penguins · mlrelay report</title>" in dom
    stored: list[RunSummary] = list_summaries(store, "penguins")
    rows = runs_table(dom)
    assert [row["run id"] for row in rows] == [s.run_id for s in reversed(stored)]
    assert HOSTILE_RUN in [row["run id"] for row in rows]
    for row, summary in zip(rows, reversed(stored), strict=True):
        assert row["status"] == summary.status
        if summary.rows is not None:
            assert int(row["rows"].replace(",", "")) == summary.rows == int(row["rows@value"])
        if summary.duration_seconds is not None:
            assert float(row["duration@value"]) == summary.duration_seconds
            assert abs(seconds_of(row["duration"]) - summary.duration_seconds) <= 0.5
        for name, value in summary.metrics.items():
            assert float(row[f"{name}@value"]) == value
            assert float(row[name]) == pytest.approx(value, abs=0.5e-4)


@pytest.mark.usefixtures("gcs")
def test_the_report_reads_a_gcs_bucket_by_setting_and_by_option(tmp_path: Path) -> None:
    bucket = new_bucket("report")
    runs = sample_history()[:4]
    write_history(bucket, runs)
    page = tmp_path / "report.html"
    google = {
        "MLRELAY_MODE": "google",
        "GOOGLE_CLOUD_PROJECT": PROJECT,
        "MLRELAY_BUCKET": bucket.bucket.name,
    }
    assert report(tmp_path / "home", page, env=google) == f"{page} (4 runs of penguins)\n"
    shown = page.read_text(encoding="utf-8")
    assert f"from gs://{bucket.bucket.name}" in shown
    assert [r["run id"] for r in runs_table(shown)] == [r.run_id for r in reversed(runs)]

    by_option = tmp_path / "by-option.html"
    report(tmp_path / "home", by_option, "--bucket", f"gs://{bucket.bucket.name}")
    assert len(runs_table(by_option.read_text(encoding="utf-8"))) == 4
