"""Signed proxy links: HMAC-SHA256 over the expiry and the URL, checked in constant time.

A link is `?url=<url>&expires=<unix seconds>&sig=<hex>`; signing the expiry with the URL
means it cannot be extended, and every link expires.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlencode


def signature(secret: str, url: str, expires: int) -> str:
    message = f"{expires}:{url}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify(secret: str, url: str, expires: str | None, sig: str | None, now: float) -> str | None:
    """None if the link is valid; otherwise why not (for the 403 message)."""
    if not sig or not expires:
        return "the link is not signed"
    if not expires.isdigit() or len(expires) > 12:
        return "the link's expiry is malformed"
    expected = signature(secret, url, int(expires))
    if not hmac.compare_digest(expected.encode(), sig.lower().encode()):
        return "the link's signature does not match"
    if int(expires) < now:
        return "the link has expired"
    return None


def signed_query(secret: str, url: str, expires: int) -> str:
    return urlencode({"url": url, "expires": expires, "sig": signature(secret, url, expires)})
