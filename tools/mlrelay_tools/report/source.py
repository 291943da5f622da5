"""Where `mlrelay report` reads a pipeline's history from, and whether the pipeline is known."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from mlrelay.config.settings import Settings
from mlrelay.errors import PermanentError
from mlrelay.history import RunSummary, history_prefix, list_summaries
from mlrelay.ports.protocols import ObjectStore
from mlrelay.registry import RegistryError, load_registry


@dataclass(frozen=True)
class History:
    pipeline: str
    summaries: list[RunSummary]
    source: str  # the bucket, as the page names it


def open_store(settings: Settings, bucket: str | None) -> tuple[ObjectStore, str]:
    """`bucket` (`gs://NAME`, a folder, or a `file://` URI of one), else the settings' bucket:
    the local bucket folder in embedded mode, MLRELAY_BUCKET in google mode."""
    if bucket is None:
        from mlrelay.ports.container import Ports

        store = Ports(settings).store
        where = f"gs://{settings.bucket}" if settings.mode == "google" else str(settings.bucket_dir)
        return store, where
    if bucket.startswith("gs://"):
        parts = urlsplit(bucket)
        if not parts.netloc or parts.path.strip("/"):
            raise PermanentError(
                "--bucket",
                f"{bucket!r} is not a bucket",
                "pass gs://BUCKET, the bucket that holds history/ (no folder after it)",
            )
        from mlrelay.adapters.gcs_store import GcsStore

        store = GcsStore(
            parts.netloc, settings.project, timeout_seconds=settings.http_timeout_seconds
        )
        return store, f"gs://{parts.netloc}"
    folder = Path(unquote(urlsplit(bucket).path)) if bucket.startswith("file://") else Path(bucket)
    if not folder.is_dir():
        raise PermanentError(
            "--bucket",
            f"{bucket!r} is not a folder",
            "pass gs://BUCKET or the local bucket folder that holds history/ (MLRELAY_HOME/bucket)",
        )
    from mlrelay.adapters.local_folder import LocalFolderStore

    return LocalFolderStore(folder), str(folder)


def read_history(settings: Settings, store: ObjectStore, source: str, pipeline: str) -> History:
    """The pipeline's summaries, oldest first. None, and the registry does not name it either:
    an unknown pipeline (most likely a typo), said with where to look."""
    summaries = list_summaries(store, pipeline)
    if not summaries and not _in_registry(settings.registry_path, pipeline):
        raise PermanentError(
            "PIPELINE",
            f"{pipeline!r} is not in the registry {settings.registry_path} and {source} holds no "
            f"history for it ({history_prefix(pipeline)})",
            "check the name: `mlrelay runs list` lists the runs and their pipelines, "
            "`mlrelay validate` the registry's pipelines",
        )
    return History(pipeline, summaries, source)


def _in_registry(path: Path, pipeline: str) -> bool:
    if not path.exists():
        return False
    try:
        return pipeline in load_registry(path).pipelines
    except RegistryError:
        return False
