"""ObjectStore port on Google Cloud Storage: create-only and compare-and-swap via generations.

Besides the port, the BigQuery snapshot engine uses `objects` (sizes and GCS's own checksums,
without reading data) and `open_read` / `open_write` (chunked streams: memory is bounded by a
chunk, not by the object).
"""

from __future__ import annotations

import builtins
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from mlrelay.errors import ConfigurationError, TransientError

STREAM_CHUNK = 8 * 1024 * 1024  # a multiple of 256 KiB, as resumable uploads require


@dataclass(frozen=True)
class StoredObject:
    key: str
    size_bytes: int
    crc32c: str  # base64, as GCS reports it
    generation: str


class GcsStore:
    def __init__(
        self,
        bucket: str,
        project: str,
        client: Any = None,
        retry_seconds: float = 60.0,
        timeout_seconds: float | None = None,
    ) -> None:
        from google.cloud import storage  # type: ignore[attr-defined,unused-ignore]
        from google.cloud.storage.retry import DEFAULT_RETRY

        self.client = client or storage.Client(project=project)
        self.bucket = self.client.bucket(bucket)
        # the client's retries of 5xx/429/connection errors and timeouts, within our budget
        self.retry = DEFAULT_RETRY.with_timeout(retry_seconds)
        # one request's wait for an answer (MLRELAY_HTTP_TIMEOUT_SECONDS), then a retry
        self.timeout = timeout_seconds or retry_seconds

    def uri(self, key: str) -> str:
        return f"gs://{self.bucket.name}/{key}"

    def read(self, key: str) -> bytes | None:
        found = self.read_versioned(key)
        return None if found is None else found[0]

    def read_versioned(self, key: str) -> tuple[bytes, str] | None:
        from google.api_core import exceptions

        blob = self.bucket.blob(key)
        with self._errors(f"read of {key}"):
            try:
                data: bytes = blob.download_as_bytes(retry=self.retry, timeout=self.timeout)
            except exceptions.NotFound:
                return None
        return data, str(blob.generation)

    def _upload(self, key: str, data: bytes, generation: int | None) -> bool:
        from google.api_core import exceptions

        with self._errors(f"write of {key}"):
            try:
                self.bucket.blob(key).upload_from_string(
                    data,
                    content_type="application/json"
                    if key.endswith(".json")
                    else "application/octet-stream",
                    if_generation_match=generation,
                    retry=self.retry,
                    timeout=self.timeout,
                )
            except exceptions.PreconditionFailed:
                return False
        return True

    def create(self, key: str, data: bytes) -> bool:
        return self._upload(key, data, 0)

    def replace(self, key: str, data: bytes, if_generation: str) -> bool:
        return self._upload(key, data, int(if_generation))

    def write(self, key: str, data: bytes) -> None:
        self._upload(key, data, None)

    def delete(self, key: str) -> None:
        from google.api_core import exceptions

        with self._errors(f"delete of {key}"), contextlib.suppress(exceptions.NotFound):
            self.bucket.blob(key).delete(retry=self.retry, timeout=self.timeout)

    def delete_if(self, key: str, if_generation: str) -> bool:
        from google.api_core import exceptions

        with self._errors(f"delete of {key}"):
            try:
                self.bucket.blob(key).delete(
                    if_generation_match=int(if_generation), retry=self.retry, timeout=self.timeout
                )
            except (exceptions.PreconditionFailed, exceptions.NotFound):
                return False
        return True

    def list(self, prefix: str) -> list[str]:
        return [found.key for found in self.objects(prefix)]

    def objects(self, prefix: str) -> builtins.list[StoredObject]:
        """The objects under `prefix`, sorted by key, with GCS's size, crc32c and generation."""
        with self._errors(f"listing of {prefix}"):
            blobs = list(
                self.client.list_blobs(
                    self.bucket, prefix=prefix, retry=self.retry, timeout=self.timeout
                )
            )
        return sorted(
            (
                StoredObject(b.name, int(b.size or 0), str(b.crc32c or ""), str(b.generation))
                for b in blobs
            ),
            key=lambda found: found.key,
        )

    def open_read(self, key: str) -> IO[bytes]:
        """A seekable reader that fetches ranges on demand (a Parquet footer costs one request)."""
        reader: IO[bytes] = self.bucket.blob(key).open("rb", chunk_size=1024 * 1024)
        return reader

    def open_write(self, key: str) -> IO[bytes]:
        """A resumable upload sent chunk by chunk; the object appears whole on close()."""
        writer: IO[bytes] = self.bucket.blob(key, chunk_size=STREAM_CHUNK).open(
            "wb", ignore_flush=True, content_type="application/octet-stream"
        )
        return writer

    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """GCS's answers as the two error kinds: 5xx/429/timeouts retry, 403/404-bucket don't."""
        import requests  # type: ignore[import-untyped,unused-ignore]
        from google.api_core import exceptions
        from google.cloud.storage.exceptions import InvalidResponse

        try:
            yield
        except exceptions.Forbidden as exc:
            raise ConfigurationError(
                "MLRELAY_BUCKET",
                f"{what} in gs://{self.bucket.name} was refused ({exc.message})",
                "grant the function's service account roles/storage.objectAdmin on the bucket",
            ) from None
        except exceptions.NotFound as exc:  # an object's absence is answered before this
            raise ConfigurationError(
                "MLRELAY_BUCKET",
                f"{what}: gs://{self.bucket.name} was not found ({exc.message})",
                "create the bucket (infra/) or fix MLRELAY_BUCKET",
            ) from None
        except (
            exceptions.RetryError,  # the client's retries ran out
            exceptions.ServerError,
            exceptions.TooManyRequests,
            InvalidResponse,  # an upload answered 5xx
            requests.exceptions.ConnectionError,
            requests.exceptions.Timeout,
        ) as exc:
            raise TransientError(f"GCS {what} failed: {exc}") from exc
