"""`mlrelay watchdog`: one watchdog pass now (what the `mlrelay-watchdog` function does on each
tick of its Scheduler job): stuck runs, missed deadlines, missed slots. Prints what it found;
`--json` prints the findings as a JSON array. Each finding is published once, whoever runs the
pass (the function, `mlrelay cron`'s loop or this command): a second pass names it again with
`new: false` and publishes nothing."""

from __future__ import annotations

import contextlib
import sys
from typing import Any

import click

from mlrelay.errors import ExplainedError, TransientError
from mlrelay_tools.cli.environment import settings_from_env
from mlrelay_tools.cli.json_output import JSON_OPTION, echo_json


def finding_rows(report: Any) -> list[dict[str, Any]]:
    return [
        {
            "kind": f.kind,
            "run_id": f.run_id,
            "pipeline": f.pipeline,
            "stage": f.stage,
            "what": f.what,
            "new": f.first,
        }
        for f in report.findings
    ]


@click.command()
@JSON_OPTION
def watchdog(as_json: bool) -> None:
    """One watchdog pass: open runs stuck or past their deadline, schedule slots never run."""
    from mlrelay_deployer.watchdog.sweep import run_pass
    from mlrelay_deployer.watchdog.wiring import watchdog_deps

    settings = settings_from_env()
    try:
        if settings.mode == "embedded":
            from mlrelay_tools.local.runtime import build_local_runtime

            runtime = build_local_runtime(settings)
            report = run_pass(watchdog_deps(runtime.ports))
            # the notifier hears what the pass published; its console posts go to stderr, so
            # stdout holds only the findings
            with contextlib.redirect_stdout(sys.stderr):
                runtime.bus.run_until_idle()
        else:
            from mlrelay.ports.container import Ports

            report = run_pass(watchdog_deps(Ports(settings)))
    except (ExplainedError, TransientError) as exc:
        raise click.ClickException(str(exc)) from None
    rows = finding_rows(report)
    if as_json:
        echo_json(rows)
        return
    click.echo(
        f"watchdog: {report.open_runs} open run(s), {report.schedules} schedule(s), "
        f"{report.slots_checked} new slot(s) checked, {len(rows)} finding(s)"
    )
    for row in rows:
        mark = "new " if row["new"] else "seen"
        click.echo(f"  [{mark}] {row['kind']:<16} {row['run_id']}  {row['what']}")
