"""A loopback server playing the GCE metadata server's service-account token endpoint, the one a
job on Vertex AI or GKE asks for its access token. Queued `failures` (HTTP statuses) are answered
first, one per request, as a metadata server that is not ready yet answers."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from .server import Answer, LoopbackFake, Request, json_answer

TOKEN_PATH = "/computeMetadata/v1/instance/service-accounts/default/token"


@dataclass
class FakeMetadataServer(LoopbackFake):
    token: str = "fake-access-token"
    failures: deque[int] = field(default_factory=deque)
    methods = ("GET",)

    @property
    def address(self) -> str:
        """host:port, as GCE_METADATA_HOST names it."""
        return self.server.address

    def token_requests(self) -> list[Request]:
        return [e.request for e in self.server.recorded() if e.request.path == TOKEN_PATH]

    def answer(self, request: Request) -> Answer:
        flavor = {k.lower(): v for k, v in request.headers.items()}.get("metadata-flavor")
        if flavor != "Google":
            return Answer(403, b"Missing required header: Metadata-Flavor", "text/plain")
        if request.path != TOKEN_PATH:
            return Answer(404, b"not found", "text/plain")
        if self.failures:
            return Answer(self.failures.popleft(), b"metadata server not ready", "text/plain")
        return json_answer(
            200, {"access_token": self.token, "expires_in": 3599, "token_type": "Bearer"}
        )
