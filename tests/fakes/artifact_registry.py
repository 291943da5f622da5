"""A loopback server playing Artifact Registry for KFP templates: the API's `tags.get` and the
`<region>-kfp.pkg.dev` download of a version by digest. Tags can be moved between versions."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from .server import Answer, LoopbackFake, Request, json_answer

_TAG = re.compile(
    r"^/v1/projects/([^/]+)/locations/([^/]+)/repositories/([^/]+)/packages/([^/]+)/tags/([^/]+)$"
)
_DOWNLOAD = re.compile(r"^/([^/]+)/([^/]+)/([^/]+)/(sha256:[0-9a-f]{64})$")


@dataclass
class FakeArtifactRegistry(LoopbackFake):
    versions: dict[str, bytes] = field(default_factory=dict)  # digest -> template
    tags: dict[str, str] = field(default_factory=dict)  # tag -> digest
    methods = ("GET",)

    @property
    def paths(self) -> list[str]:
        """Every path asked for, in order."""
        return [e.request.target for e in self.server.recorded()]

    def push(self, text: str, tag: str) -> str:
        digest = "sha256:" + hashlib.sha256(text.encode()).hexdigest()
        self.versions[digest] = text.encode()
        self.tags[tag] = digest
        return digest

    def answer(self, request: Request) -> Answer:
        if tag := _TAG.match(request.target):
            project, location, repo, package, name = tag.groups()
            if name not in self.tags:
                return json_answer(404, {"error": {"code": 404, "message": "no tag"}})
            base = f"projects/{project}/locations/{location}/repositories/{repo}/packages/{package}"
            body = {"name": f"{base}/tags/{name}", "version": f"{base}/versions/{self.tags[name]}"}
            return json_answer(200, body)
        download = _DOWNLOAD.match(request.target)
        if download and download.group(4) in self.versions:
            return Answer(200, self.versions[download.group(4)], "application/x-yaml")
        return Answer(404, b'{"error": {"code": 404, "message": "not found"}}')
