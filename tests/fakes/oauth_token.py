"""A loopback server playing Google's OAuth 2.0 token endpoint for a service-account key file
whose `token_uri` points at it: it records each grant and refuses it (400 `invalid_grant`), as
Google does for a deleted or disabled key. Enough to watch a client start a Google token fetch
without reaching Google (the fetch that follows a success goes to a fixed Google address)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from .server import Answer, LoopbackFake, Request, json_answer


@dataclass
class FakeTokenEndpoint(LoopbackFake):
    methods = ("POST",)

    @property
    def grants(self) -> list[dict[str, str]]:
        """The form of every token request, in order."""
        return [
            {k: v[0] for k, v in parse_qs(e.request.body.decode()).items()}
            for e in self.server.recorded()
        ]

    def answer(self, request: Request) -> Answer:
        return json_answer(400, {"error": "invalid_grant", "error_description": "Invalid grant"})

    def key_file(self, folder: Path, email: str) -> Path:
        """A service-account key file (a fresh RSA key, made here) that gets its tokens here."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        document: dict[str, Any] = {
            "type": "service_account",
            "project_id": email.split("@")[1].split(".")[0],
            "private_key_id": "fake",
            "private_key": pem,
            "client_email": email,
            "client_id": "1",
            "token_uri": f"{self.url}/token",
        }
        path = folder / "key.json"
        path.write_text(json.dumps(document))
        return path
