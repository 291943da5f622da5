"""The report page built from a run history: everything escaped, nothing fetched, a chart per
metric, and tables whose numbers are the history's."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from mlrelay.history import RunSummary
from mlrelay_tools.report.charts import STATUS_COLOURS
from mlrelay_tools.report.numbers import MISSING
from mlrelay_tools.report.page import metric_names, render_report
from tests.report_pages import HOSTILE_ERROR, HOSTILE_RUN, runs_table, sample_history, seconds_of

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def page_of(runs: list[RunSummary], pipeline: str = "penguins") -> str:
    return render_report(pipeline, runs, generated_at=NOW, source="/tmp/bucket")


def test_a_run_id_and_an_error_holding_script_tags_are_escaped() -> None:
    page = page_of(sample_history())
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;script&gt;document.title=&quot;owned&quot;&lt;/script&gt; &amp; more" in page
    [failed] = [row for row in runs_table(page) if row["status"] == "failed"]
    assert failed["run id"] == HOSTILE_RUN  # the text a reader sees is the run id as it is
    assert failed["notes"] == f"failed task train\n{HOSTILE_ERROR}"


def test_a_hostile_pipeline_name_parameter_and_quality_message_are_escaped() -> None:
    runs = [
        r.model_copy(update={"parameters": {"x": "</td><img src=x>"}}) for r in sample_history()
    ]
    page = page_of(runs, pipeline="p<b>")
    assert "<img" not in page and "<b>" not in page
    assert "p&lt;b&gt; · run history" in page
    assert "null(s) in &lt;sex&gt;" in page  # the quality message


def test_the_page_needs_no_script_and_names_no_outside_url() -> None:
    page = page_of(sample_history())
    assert not re.search(r"https?://", page)
    assert not re.search(r"<(script|link|img|iframe|object)\b", page, re.IGNORECASE)
    assert not re.search(r"\b(src|href)=", page)
    assert "default-src 'none'" in page  # and the browser is told so


def test_every_metric_gets_its_chart_and_its_column() -> None:
    runs = sample_history()
    page = page_of(runs)
    assert metric_names(runs) == ["accuracy", "f1", "log_loss"]
    for name in metric_names(runs):
        assert f'<h3 class="metric">{name}</h3><svg class="chart"' in page
        assert f'aria-label="{name}"' in page
    assert page.count('<svg class="chart"') == 3 + 3  # timeline, durations, rows + 3 metrics
    assert set(runs_table(page)[0]) >= {"accuracy", "f1", "log_loss"}


def test_the_runs_table_holds_the_history_numbers_newest_first() -> None:
    runs = sample_history()
    rows = runs_table(page_of(runs))
    assert [row["run id"] for row in rows] == [r.run_id for r in reversed(runs)]
    for row, run in zip(rows, reversed(runs), strict=True):
        assert row["status"] == run.status
        assert run.logical_time is not None
        assert row["logical time"] == run.logical_time.strftime("%Y-%m-%d %H:%MZ")
        if run.rows is None:
            assert row["rows"] == MISSING and "rows@value" not in row
        else:
            assert int(row["rows"].replace(",", "")) == run.rows
            assert int(row["rows@value"]) == run.rows
        if run.duration_seconds is not None:
            assert float(row["duration@value"]) == run.duration_seconds
            assert abs(seconds_of(row["duration"]) - run.duration_seconds) <= 0.5
        for name in ("accuracy", "f1", "log_loss"):
            if name in run.metrics:
                assert float(row[f"{name}@value"]) == run.metrics[name]
                assert float(row[name]) == pytest.approx(run.metrics[name], abs=0.5e-4)
            else:
                assert row[name] == MISSING
        assert row["parameters"] == f"n_estimators={run.parameters['n_estimators']}"
    assert "1,264" in rows[1]["rows"]  # the fifth run's 1264 rows, with a separator


def test_status_marks_take_their_status_colour() -> None:
    runs = sample_history()
    page = page_of(runs)
    timeline = page.split('aria-label="status timeline">')[1].split("</svg>")[0]
    marks = re.findall(r'data-status="([a-z_]+)"[^>]*fill="(#[0-9a-f]{6})"', timeline)
    assert marks == [(r.status, STATUS_COLOURS[r.status]) for r in runs]
    assert "6 runs, 3 succeeded, 1 succeeded with regression, 1 failed, 1 cancelled" in page


def test_the_latest_quality_results_are_tabled_with_their_verdicts() -> None:
    page = page_of(sample_history())
    latest = page.split('<table id="quality-latest">')[1].split("</table>")[0]
    # the cancelled run (the sixth, i=5) is the latest with results: 5 nulls, a warning
    assert "<td>sex_not_null</td><td>not_null</td><td>sex</td><td>warn</td>" in latest
    assert '<span class="warn">warn</span></td><td>5</td><td>0</td>' in latest
    assert '<span class="pass">pass</span></td><td>244</td><td>100</td>' in latest
    recent = page.split('<table id="quality-recent">')[1].split("</table>")[0]
    assert recent.count("<tr>") == 3  # the header and one row per expectation


def test_an_empty_history_makes_a_page_that_says_so() -> None:
    page = page_of([])
    assert "No finished run of this pipeline has a summary yet" in page
    assert "<svg" not in page and runs_table(page) == []
    assert "0 runs" in page


def test_runs_without_metrics_or_quality_say_so_instead_of_drawing_nothing() -> None:
    runs = [r.model_copy(update={"metrics": {}, "quality": []}) for r in sample_history()]
    page = page_of(runs)
    assert "No run reported a metric." in page
    assert "No run recorded expectation results." in page


def test_observed_and_expected_values_read_as_figures_lists_as_json() -> None:
    result = {"name": "island_known", "check": "accepted_values", "column": "island"}
    runs = [
        sample_history()[0].model_copy(
            update={
                "quality": [
                    {
                        **result,
                        "passed": False,
                        "severity": "error",
                        "observed": 12345,
                        "expected": ["Biscoe", "<Dream>"],
                        "message": "2 unknown",
                    },
                    {
                        **result,
                        "name": "nulls",
                        "passed": True,
                        "severity": "warn",
                        "observed": 0.0123456,
                        "expected": 0.05,
                        "message": "",
                    },
                ]
            }
        )
    ]
    latest = page_of(runs).split('<table id="quality-latest">')[1].split("</table>")[0]
    assert '<span class="fail">fail</span></td><td>12,345</td>' in latest
    assert "<td>[&quot;Biscoe&quot;, &quot;&lt;Dream&gt;&quot;]</td>" in latest
    assert "<td>0.0123</td><td>0.05</td>" in latest
