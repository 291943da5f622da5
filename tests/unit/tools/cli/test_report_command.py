"""`mlrelay report PIPELINE` on a local bucket: the page lands where asked (or in the current
folder), an empty history is a page that says so, an unknown pipeline an error naming it."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from mlrelay.adapters.local_folder import LocalFolderStore
from mlrelay_tools.cli.main import cli
from tests.helpers import REGISTRY
from tests.report_pages import runs_table, sample_history, write_history


def env_for(home: Path) -> dict[str, str]:
    return {
        "MLRELAY_MODE": "embedded",
        "MLRELAY_HOME": str(home),
        "MLRELAY_REGISTRY": str(REGISTRY),
    }


def test_the_page_lands_in_the_current_folder_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    write_history(LocalFolderStore(home / "bucket"), sample_history())
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["report", "penguins"], env=env_for(home))
    assert result.exit_code == 0, result.output
    assert result.output == "mlrelay-report-penguins.html (6 runs of penguins)\n"
    page = (tmp_path / "mlrelay-report-penguins.html").read_text(encoding="utf-8")
    assert len(runs_table(page)) == 6
    assert f"from {home / 'bucket'}" in page


def test_output_and_bucket_options_choose_where_it_reads_and_writes(tmp_path: Path) -> None:
    other = tmp_path / "other-bucket"
    write_history(LocalFolderStore(other), sample_history()[:2])
    target = tmp_path / "out" / "page.html"
    target.parent.mkdir()
    for bucket in (str(other), other.as_uri()):
        result = CliRunner().invoke(
            cli,
            ["report", "penguins", "--bucket", bucket, "--output", str(target)],
            env=env_for(tmp_path / "empty-home"),
        )
        assert result.exit_code == 0, result.output
        assert result.output == f"{target} (2 runs of penguins)\n"
        assert len(runs_table(target.read_text(encoding="utf-8"))) == 2


def test_a_pipeline_of_the_registry_without_history_gets_a_page_saying_so(tmp_path: Path) -> None:
    target = tmp_path / "page.html"
    result = CliRunner().invoke(
        cli, ["report", "penguins", "-o", str(target)], env=env_for(tmp_path / "home")
    )
    assert result.exit_code == 0, result.output
    assert "(0 runs of penguins)" in result.output
    assert "No finished run of this pipeline has a summary yet" in target.read_text()


def test_an_unknown_pipeline_is_an_error_naming_it_and_where_to_look(tmp_path: Path) -> None:
    target = tmp_path / "page.html"
    result = CliRunner().invoke(
        cli, ["report", "pengiuns", "-o", str(target)], env=env_for(tmp_path / "home")
    )
    assert result.exit_code == 1
    assert "PIPELINE: 'pengiuns' is not in the registry" in result.output
    assert "history/pengiuns/" in result.output
    assert "`mlrelay runs list`" in result.output and "`mlrelay validate`" in result.output
    assert not target.exists()


def test_a_pipeline_gone_from_the_registry_still_has_its_history_shown(tmp_path: Path) -> None:
    home = tmp_path / "home"
    write_history(LocalFolderStore(home / "bucket"), sample_history("retired"))
    target = tmp_path / "page.html"
    result = CliRunner().invoke(cli, ["report", "retired", "-o", str(target)], env=env_for(home))
    assert result.exit_code == 0, result.output
    assert len(runs_table(target.read_text())) == 6


@pytest.mark.parametrize(
    ("bucket", "said"),
    [
        ("gs://bucket/history", "'gs://bucket/history' is not a bucket"),
        ("gs://", "'gs://' is not a bucket"),
        ("/no/such/folder", "'/no/such/folder' is not a folder"),
    ],
)
def test_a_bad_bucket_is_refused_naming_the_option(tmp_path: Path, bucket: str, said: str) -> None:
    result = CliRunner().invoke(
        cli, ["report", "penguins", "--bucket", bucket, "-o", str(tmp_path / "p.html")]
    )
    assert result.exit_code == 1
    assert f"--bucket: {said}" in result.output
    assert not Path("/no/such/folder").exists()


def test_an_output_that_cannot_be_written_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["report", "penguins", "-o", str(tmp_path / "missing" / "p.html")],
        env=env_for(tmp_path / "home"),
    )
    assert result.exit_code == 1
    assert "--output: cannot write" in result.output
