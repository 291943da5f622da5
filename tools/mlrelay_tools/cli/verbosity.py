"""`-v` / `-vv` for every command: how much the CLI logs, always on stderr.

The option sits on the group and on every command under it, so `mlrelay -v runs list` and
`mlrelay runs list -v` mean the same; counts add up (`mlrelay -v runs list -v` is `-vv`). Each
occurrence re-applies the level before the command body runs, so no command can miss it.
Nothing but a command's own output goes to stdout (`--json` output stays parseable).
"""

from __future__ import annotations

import click
import structlog

from mlrelay.logs import configure_logging

LEVELS = ("WARNING", "INFO", "DEBUG")  # no -v, -v, -vv (and more)
_KEY = "mlrelay.verbosity"

log = structlog.get_logger()


def _apply(ctx: click.Context, _: click.Parameter, count: int) -> None:
    verbosity = ctx.meta.get(_KEY, 0) + count  # ctx.meta is shared by the whole command line
    ctx.meta[_KEY] = verbosity
    level = LEVELS[min(verbosity, len(LEVELS) - 1)]
    configure_logging("console", level)  # stderr
    if not isinstance(ctx.command, click.Group):
        log.debug("command_started", command=ctx.command_path, log_level=level)


def verbose_option() -> click.Option:
    return click.Option(
        ["-v", "--verbose"],
        count=True,
        expose_value=False,
        callback=_apply,
        help="Log more on stderr: -v info, -vv debug (before or after the command).",
    )


def add_verbose_option(command: click.Command) -> None:
    """Give `command` and every command under it the `-v` option (once)."""
    if not any(isinstance(p, click.Option) and "--verbose" in p.opts for p in command.params):
        command.params.append(verbose_option())
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            add_verbose_option(sub)
