"""The `Authorization` header's Bearer credential (RFC 6750 section 2.1), parsed strictly.

A header that is present but not `Bearer <b64token>` is malformed (400, `invalid_request`)
rather than missing: a client sending Basic credentials or a truncated token should be told
so, not asked to log in.
"""

from __future__ import annotations

import re

# b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
MAX_TOKEN = 16 << 10  # a JWT with many claims is a few KiB; anything larger is not one


class BadAuthorization(ValueError):
    pass


def bearer_token(header: str | None) -> str | None:
    """The token, None when there is no header; BadAuthorization when it is malformed."""
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise BadAuthorization("the Authorization header must be: Bearer <token>")
    token = token.strip()
    if not token or len(token) > MAX_TOKEN or not _B64TOKEN.fullmatch(token):
        raise BadAuthorization("the bearer token is malformed")
    return token
