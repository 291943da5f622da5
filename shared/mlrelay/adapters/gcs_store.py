"""ObjectStore port on Google Cloud Storage: create-only and compare-and-swap via generations."""

from __future__ import annotations

import contextlib
from typing import Any

from mlrelay.errors import TransientError


class GcsStore:
    def __init__(self, bucket: str, project: str, client: Any = None) -> None:
        from google.cloud import storage

        self.client = client or storage.Client(project=project)
        self.bucket = self.client.bucket(bucket)

    def uri(self, key: str) -> str:
        return f"gs://{self.bucket.name}/{key}"

    def read(self, key: str) -> bytes | None:
        found = self.read_versioned(key)
        return None if found is None else found[0]

    def read_versioned(self, key: str) -> tuple[bytes, str] | None:
        from google.api_core import exceptions

        blob = self.bucket.blob(key)
        try:
            data: bytes = blob.download_as_bytes()
        except exceptions.NotFound:
            return None
        return data, str(blob.generation)

    def _upload(self, key: str, data: bytes, generation: int | None) -> bool:
        from google.api_core import exceptions

        try:
            self.bucket.blob(key).upload_from_string(
                data,
                content_type="application/json" if key.endswith(".json") else None,
                if_generation_match=generation,
            )
        except exceptions.PreconditionFailed:
            return False
        except (exceptions.ServerError, exceptions.TooManyRequests) as exc:
            raise TransientError(f"GCS write of {key} failed: {exc}") from exc
        return True

    def create(self, key: str, data: bytes) -> bool:
        return self._upload(key, data, 0)

    def replace(self, key: str, data: bytes, if_generation: str) -> bool:
        return self._upload(key, data, int(if_generation))

    def write(self, key: str, data: bytes) -> None:
        self._upload(key, data, None)

    def delete(self, key: str) -> None:
        from google.api_core import exceptions

        with contextlib.suppress(exceptions.NotFound):
            self.bucket.blob(key).delete()

    def list(self, prefix: str) -> list[str]:
        return sorted(blob.name for blob in self.client.list_blobs(self.bucket, prefix=prefix))
