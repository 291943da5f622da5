"""`mlrelay package SERVICE | --all`: build the Cloud Function upload for each service."""

from __future__ import annotations

from pathlib import Path

import click

from mlrelay.errors import ExplainedError
from mlrelay_tools.packaging import SERVICES, package_service


@click.command("package")
@click.argument("service", required=False, type=click.Choice(SERVICES))
@click.option("--all", "all_services", is_flag=True, help="Package every service.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    default=Path("dist/functions"),
    show_default=True,
    help="Where the folders and zips go.",
)
@click.option(
    "--registry",
    "registry_file",
    type=click.Path(path_type=Path, exists=True),
    default=Path("pipelines/registry.yaml"),
    show_default=True,
)
@click.option(
    "--repo",
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    default=Path(),
    show_default=True,
    help="The mlrelay source tree.",
)
def package(
    service: str | None, all_services: bool, out_dir: Path, registry_file: Path, repo: Path
) -> None:
    """Make the source a Cloud Function deploy uploads: main.py, the service's code, the shared
    library vendored in, the registry and its templates, and the service's lock (every package
    pinned, with hashes) as requirements.txt."""
    if all_services == (service is not None):
        raise click.UsageError("name one SERVICE or pass --all")
    services = SERVICES if all_services else (service or "",)
    for name in services:
        try:
            built = package_service(
                name, repo.resolve(), registry_file.resolve(), out_dir.resolve()
            )
        except ExplainedError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"{name}: {built.archive} ({len(built.requirements)} locked packages, hashed)")
