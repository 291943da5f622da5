"""Slack's v0 request signature (HMAC-SHA256 over `v0:<timestamp>:<raw body>`), checked with
`slack_sdk.signature.SignatureVerifier` inside a 5-minute window, past and future."""

from __future__ import annotations

import re
from collections.abc import Mapping

from slack_sdk.signature import SignatureVerifier

WINDOW_SECONDS = 300
_TIMESTAMP = re.compile(r"^[0-9]{1,12}$")
_SIGNATURE = re.compile(r"^v0=[0-9a-f]{64}$")


def signature_problem(
    signing_secret: str, body: bytes, headers: Mapping[str, str], now: float
) -> str | None:
    """Why this request is not Slack's (None: it is). Only well-formed headers reach the
    verifier, whose own parsing raises on garbage; the comparison is constant-time."""
    timestamp = headers.get("x-slack-request-timestamp")
    signature = headers.get("x-slack-signature")
    if timestamp is None or signature is None:
        return "missing X-Slack-Request-Timestamp or X-Slack-Signature"
    if not _TIMESTAMP.match(timestamp) or not _SIGNATURE.match(signature):
        return "malformed X-Slack-Request-Timestamp or X-Slack-Signature"
    if abs(now - int(timestamp)) > WINDOW_SECONDS:
        return "timestamp outside the 5-minute window"
    try:
        body.decode("utf-8")  # Slack sends UTF-8; the verifier decodes the body to sign it
    except UnicodeDecodeError:
        return "body is not UTF-8"
    verifier = SignatureVerifier(signing_secret)
    if not verifier.is_valid(body=body, timestamp=timestamp, signature=signature):
        return "signature does not match"
    return None
