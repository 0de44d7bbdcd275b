"""X-Request-ID: the one a proxy (nginx's $request_id) or client sent, if it is safe to
log and echo, else a fresh one. Pure, so the rule is a table (tests/protocol)."""

from __future__ import annotations

import re
import secrets

# What nginx, Heroku, Envoy and AWS send: hex, UUIDs, base64url-ish. Nothing that could
# break a log line or a header: no spaces, quotes or control characters; 128 at most.
_SAFE = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")


def request_id(sent: str | None) -> str:
    if sent is not None and _SAFE.fullmatch(sent):
        return sent
    return secrets.token_hex(16)  # nginx's $request_id shape: 32 hex digits
