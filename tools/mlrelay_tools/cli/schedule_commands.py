"""`mlrelay schedules plan|apply` (Cloud Scheduler kept in step with the registry),
`mlrelay backfill` (the missed slots' runs) and `mlrelay schedule` (a local cron)."""

from __future__ import annotations

import getpass
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from mlrelay.config.settings import Settings
from mlrelay.errors import ExplainedError, TransientError
from mlrelay.registry import Registry, RegistryError, load_registry
from mlrelay_tools.cli.environment import settings_from_env
from mlrelay_tools.cli.json_output import JSON_OPTION, echo_json

DATETIME = click.DateTime(["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M%z", "%Y-%m-%d"])


def _registry(settings: Settings) -> Registry:
    try:
        return load_registry(settings.registry_path)
    except RegistryError as exc:
        raise click.ClickException(str(exc)) from None


def _aware(moment: datetime) -> datetime:
    """A date without an offset is a UTC date (the registry's zones apply to the crons)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


scheduler_options = [
    click.option(
        "--location",
        envvar="MLRELAY_SCHEDULER_LOCATION",
        required=True,
        help="Cloud Scheduler location, e.g. europe-west1 (env MLRELAY_SCHEDULER_LOCATION).",
    ),
    click.option(
        "--endpoint",
        envvar="MLRELAY_SCHEDULER_ENDPOINT",
        hidden=True,
        help="Talk to this Cloud Scheduler endpoint without credentials (loopback tests).",
    ),
    click.option(
        "--adopt",
        is_flag=True,
        help="Take over mlrelay jobs Terraform manages (after `terraform state rm` and "
        "manage_schedules = false).",
    ),
]


def _with_scheduler_options(command: Any) -> Any:
    for option in reversed(scheduler_options):
        command = option(command)
    return command


def _plan(
    location: str, endpoint: str | None, adopt: bool = False
) -> tuple[Any, list[Any], list[Any]]:
    """The changes `apply` would make, and the jobs another owner manages (told on stderr)."""
    from mlrelay_tools.schedules.cloud_scheduler import CloudSchedulerJobs
    from mlrelay_tools.schedules.jobs import desired_jobs
    from mlrelay_tools.schedules.sync import held_jobs, plan_changes

    settings = settings_from_env()
    if not settings.project or settings.project == "local":
        raise click.ClickException("GOOGLE_CLOUD_PROJECT is not set: export the project to sync")
    registry = _registry(settings)
    topic = f"projects/{settings.project}/topics/{settings.topics.runs}"
    jobs = CloudSchedulerJobs(settings.project, location, endpoint=endpoint)
    try:
        desired, found = desired_jobs(registry, topic), jobs.list_jobs()
    except (ExplainedError, TransientError) as exc:
        raise click.ClickException(str(exc)) from None
    held = [] if adopt else held_jobs(desired, found)
    for job in held:
        click.echo(job.describe(), err=True)
    if held:
        click.echo(_HELD_HINT, err=True)
    return jobs, plan_changes(desired, found, adopt=adopt), held


_HELD_HINT = (
    "held jobs are Terraform's (infra/, manage_schedules = true): change them with "
    "`mlrelay schedules export` and `terraform apply`, or hand them over "
    "(`terraform state rm`, manage_schedules = false, then `schedules apply --adopt`)"
)


@click.group()
def schedules() -> None:
    """Cloud Scheduler jobs kept in step with the registry's schedules."""


class _PlanUsageError(click.UsageError):
    exit_code = 1


class _PlanCommand(click.Command):
    """Exit 2 means "changes pending" for `plan`, so a usage error exits 1 like any error."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            raise _PlanUsageError(exc.format_message(), exc.ctx) from None


PLAN_PENDING = 2  # as `terraform plan -detailed-exitcode`: 0 in step, 1 error, 2 changes


@schedules.command("plan", cls=_PlanCommand)
@_with_scheduler_options
@JSON_OPTION
def schedules_plan(location: str, endpoint: str | None, adopt: bool, as_json: bool) -> None:
    """Show what `apply` would change (create, update, pause, resume, delete); jobs Terraform
    manages are listed apart (`held`, on stderr), with what the registry would change in them.

    Exit status: 0 in step, 2 changes pending, 1 error."""
    _, changes, _ = _plan(location, endpoint, adopt)
    if as_json:
        echo_json([_change_row(change) for change in changes])
    elif not changes:
        click.echo("in step: nothing to change")
    else:
        for change in changes:
            click.echo(change.describe())
    if changes:
        sys.exit(PLAN_PENDING)


def _change_row(change: Any) -> dict[str, Any]:
    desired = change.desired
    return {
        "action": change.action,
        "job_id": change.job_id,
        "fields": list(change.fields),
        "schedule": desired.schedule if desired else None,
        "time_zone": desired.time_zone if desired else None,
        "paused": desired.paused if desired else None,
    }


@schedules.command("apply")
@_with_scheduler_options
def schedules_apply(location: str, endpoint: str | None, adopt: bool) -> None:
    """Make Cloud Scheduler match the registry; running it again changes nothing. Jobs Terraform
    manages are left alone and make it fail (`--adopt` takes them over)."""
    from mlrelay_tools.schedules.sync import apply_changes

    jobs, changes, held = _plan(location, endpoint, adopt)
    if not changes:
        click.echo("in step: nothing to change")
    try:
        for change in apply_changes(jobs, changes):
            click.echo(f"done: {change.describe()}")
    except (ExplainedError, TransientError) as exc:
        raise click.ClickException(str(exc)) from None
    if held:
        raise click.ClickException(f"{len(held)} job(s) left alone: another owner manages them")


@schedules.command("export")
@click.option(
    "--registry",
    "registry_file",
    type=click.Path(path_type=Path, exists=True),
    default=None,
    help="Default: MLRELAY_REGISTRY.",
)
@click.option("--out", "out_file", type=click.Path(path_type=Path), required=True)
def schedules_export(registry_file: Path | None, out_file: Path) -> None:
    """Write the jobs the registry asks for as JSON, for Terraform (infra/, `schedules_file`):
    the same ids and bodies `apply` would make, so the two never disagree."""
    import base64
    import json

    from mlrelay_tools.schedules.jobs import desired_jobs

    registry = load_registry(registry_file) if registry_file else _registry(settings_from_env())
    jobs = [
        {
            "job_id": job.job_id,
            "schedule": job.schedule,
            "time_zone": job.time_zone,
            "description": job.description,
            "data": base64.b64encode(job.data).decode(),
            "attributes": job.attributes,
            "paused": job.paused,
        }
        for job in desired_jobs(registry, "(the runs topic)", owner="terraform")
    ]
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_text(json.dumps(jobs, indent=2) + "\n")
    click.echo(f"{len(jobs)} job(s) written to {out_file}")


@click.command()
@click.argument("owner", metavar="PIPELINE")
@click.option("--from", "start", type=DATETIME, required=True, help="First instant (inclusive).")
@click.option("--to", "end", type=DATETIME, required=True, help="Last instant (inclusive).")
@click.option("--schedule", "schedule_name", help="Only this schedule of the pipeline.")
@click.option(
    "--concurrency", default=4, show_default=True, type=click.IntRange(1), help="Runs at once."
)
@click.option("--dry-run", is_flag=True, help="List the slots and run ids; publish nothing.")
def backfill(
    owner: str,
    start: datetime,
    end: datetime,
    schedule_name: str | None,
    concurrency: int,
    dry_run: bool,
) -> None:
    """Publish the RunRequests of PIPELINE's (or a group's) slots between --from and --to.

    Run ids are those the scheduled ticks would have had, so a slot that ran is not run again."""
    from mlrelay_tools.schedules.backfill import backfill_items

    settings = settings_from_env()
    try:
        items = backfill_items(
            _registry(settings),
            owner,
            _aware(start),
            _aware(end),
            schedule_name=schedule_name,
            requested_by=getpass.getuser(),
        )
    except ExplainedError as exc:
        raise click.ClickException(str(exc)) from None
    runs = sum(len(item.run_ids) for item in items)
    click.echo(f"{len(items)} slot(s), {runs} run(s) for {owner}")
    if dry_run:
        for item in items:
            slot = item.request.logical_time.isoformat() if item.request.logical_time else "?"
            click.echo(f"  {slot}  {' '.join(item.run_ids)}")
        return
    if settings.mode == "embedded":
        _backfill_embedded(settings, items, concurrency)
    else:
        _backfill_google(settings, items, concurrency)


def _backfill_embedded(settings: Settings, items: list[Any], concurrency: int) -> None:
    from dataclasses import replace

    from mlrelay.stage.ledger import read_run
    from mlrelay_tools.demo import seed_demo_warehouse
    from mlrelay_tools.local.runtime import build_local_runtime
    from mlrelay_tools.schedules.backfill import publish_all

    seed_demo_warehouse(settings.warehouse_path)
    runtime = build_local_runtime(replace(settings, bus_workers=concurrency))
    publish_all(runtime.bus, settings.topics.runs, items)
    stats = runtime.bus.run_until_idle()
    states: dict[str, int] = {}
    for item in items:
        for run_id in item.run_ids:
            deploy = read_run(runtime.store, run_id).get("pipeline")
            state = deploy.state if deploy else "not deployed"
            states[state] = states.get(state, 0) + 1
    summary = ", ".join(f"{n} {state}" for state, n in sorted(states.items()))
    click.echo(f"runs: {summary}; at most {stats.most_concurrent} deliveries at once")
    if stats.dead_lettered:
        raise click.ClickException(f"{stats.dead_lettered} message(s) dead-lettered")


def _backfill_google(settings: Settings, items: list[Any], concurrency: int) -> None:
    from mlrelay.adapters.pubsub_publisher import PubSubPublisher
    from mlrelay.ports.container import Ports
    from mlrelay_tools.schedules.backfill import publish_windowed, run_finished

    store = Ports(settings).store
    try:
        ids = publish_windowed(
            PubSubPublisher(settings.project),
            settings.topics.runs,
            items,
            concurrency=concurrency,
            finished=lambda run_id: run_finished(store, run_id),
        )
    except (ExplainedError, TransientError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"published {len(ids)} slot(s) to {settings.topics.runs}")


def _watch(run_pass: Any, deps: Any) -> None:
    """One watchdog pass inside the local cron; a transient failure waits for the next one."""
    try:
        run_pass(deps)
    except TransientError as exc:
        click.echo(f"watchdog pass failed, next one in 5 min: {exc}", err=True)


def _deliver(bus: Any) -> None:
    bus.run_until_idle()


_FOR_SECONDS = click.option(
    "--for-seconds", type=click.FloatRange(0), help="Stop after this long (default: run on)."
)


@click.command("cron")
@_FOR_SECONDS
def cron(for_seconds: float | None) -> None:
    """Run the registry's schedules on this machine (embedded runtime): a local cron."""
    _run_local_cron(for_seconds)


@click.command("schedule", hidden=True, deprecated=True)
@_FOR_SECONDS
def schedule(for_seconds: float | None) -> None:
    """The old name of `mlrelay cron` (kept for one release; `schedules` is Cloud Scheduler)."""
    _run_local_cron(for_seconds)


def _run_local_cron(for_seconds: float | None) -> None:
    from mlrelay_tools.demo import seed_demo_warehouse
    from mlrelay_tools.local.runtime import build_local_runtime
    from mlrelay_tools.schedules.local_cron import next_slot, run_cron

    settings = settings_from_env()
    registry = _registry(settings)
    seed_demo_warehouse(settings.warehouse_path)
    runtime = build_local_runtime(settings, registry=registry)
    stop_at = None if for_seconds is None else time.monotonic() + for_seconds
    upcoming = next_slot(registry, datetime.now(UTC))
    click.echo(f"local cron: next slot {upcoming.isoformat() if upcoming else 'none'}")

    def nap(seconds: float) -> None:
        left = None if stop_at is None else stop_at - time.monotonic()
        time.sleep(max(0.0, seconds if left is None else min(seconds, left)))

    from mlrelay_deployer.watchdog.sweep import run_pass
    from mlrelay_deployer.watchdog.wiring import watchdog_deps

    published = run_cron(
        registry,
        runtime.bus,
        settings.topics.runs,
        deliver=lambda: _deliver(runtime.bus),
        sleep=nap,
        stop=lambda: stop_at is not None and time.monotonic() >= stop_at,
        watch=lambda: _watch(run_pass, watchdog_deps(runtime.ports)),
    )
    click.echo(f"local cron stopped after {published} tick(s)")
