"""A loopback server playing Artifact Registry for KFP templates: the API's `tags.get` and the
`<region>-kfp.pkg.dev` download of a version by digest. Tags can be moved between versions."""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_TAG = re.compile(
    r"^/v1/projects/([^/]+)/locations/([^/]+)/repositories/([^/]+)/packages/([^/]+)/tags/([^/]+)$"
)
_DOWNLOAD = re.compile(r"^/([^/]+)/([^/]+)/([^/]+)/(sha256:[0-9a-f]{64})$")


@dataclass
class FakeArtifactRegistry:
    versions: dict[str, bytes] = field(default_factory=dict)  # digest -> template
    tags: dict[str, str] = field(default_factory=dict)  # tag -> digest
    paths: list[str] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def push(self, text: str, tag: str) -> str:
        digest = "sha256:" + hashlib.sha256(text.encode()).hexdigest()
        self.versions[digest] = text.encode()
        self.tags[tag] = digest
        return digest


def start_fake_artifact_registry() -> tuple[FakeArtifactRegistry, ThreadingHTTPServer]:
    fake = FakeArtifactRegistry()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, data: bytes, kind: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            fake.paths.append(self.path)
            if tag := _TAG.match(self.path):
                project, location, repo, package, name = tag.groups()
                if name not in fake.tags:
                    self._send(
                        404, json.dumps({"error": {"code": 404, "message": "no tag"}}).encode()
                    )
                    return
                base = (
                    f"projects/{project}/locations/{location}/repositories/{repo}/"
                    f"packages/{package}"
                )
                body = {
                    "name": f"{base}/tags/{name}",
                    "version": f"{base}/versions/{fake.tags[name]}",
                }
                self._send(200, json.dumps(body).encode())
            elif (download := _DOWNLOAD.match(self.path)) and download.group(4) in fake.versions:
                self._send(200, fake.versions[download.group(4)], "application/x-yaml")
            else:
                self._send(404, b'{"error": {"code": 404, "message": "not found"}}')

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return fake, server
