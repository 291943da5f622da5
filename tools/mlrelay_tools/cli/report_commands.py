"""`mlrelay report PIPELINE`: write the pipeline's run history as one self-contained HTML page."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import click
import structlog

from mlrelay.errors import ExplainedError
from mlrelay_tools.cli.environment import settings_from_env

log = structlog.get_logger()


@click.command("report")
@click.argument("pipeline")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the page (default ./mlrelay-report-PIPELINE.html).",
)
@click.option(
    "--bucket",
    metavar="URI",
    help="Read the history from gs://BUCKET or a local bucket folder instead of the settings' "
    "bucket (embedded: MLRELAY_HOME/bucket; google: MLRELAY_BUCKET).",
)
def report(pipeline: str, output: Path | None, bucket: str | None) -> None:
    """Write PIPELINE's run history as one HTML page: status timeline, durations, row counts,
    a trend chart per metric, the latest quality results and the table of runs.

    The page needs nothing but a browser: no script, no outside URL; send it, attach it, open it
    offline. It reads the run summaries under history/PIPELINE/ in the bucket."""
    from mlrelay_tools.report.page import render_report
    from mlrelay_tools.report.source import open_store, read_history

    settings = settings_from_env()
    try:
        store, source = open_store(settings, bucket)
        history = read_history(settings, store, source, pipeline)
    except ExplainedError as exc:
        raise click.ClickException(str(exc)) from None
    page = render_report(
        pipeline, history.summaries, generated_at=datetime.now(UTC), source=history.source
    )
    target = output or Path(f"mlrelay-report-{re.sub(r'[^A-Za-z0-9._-]', '_', pipeline)}.html")
    try:
        target.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise click.ClickException(f"--output: cannot write {target} ({exc.strerror})") from None
    log.info("report_written", pipeline=pipeline, runs=len(history.summaries), path=str(target))
    runs = len(history.summaries)
    click.echo(f"{target} ({runs} run{'s' if runs != 1 else ''} of {pipeline})")
