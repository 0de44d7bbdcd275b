"""HMAC-SHA256 signatures with expiries, checked in constant time against every key.

Keys rotate: the first key signs, every key verifies, so an operator adds a new key in
front, waits out the old links' lifetime, then drops the old key.

Proxy links are `?url=<url>&expires=<unix seconds>&sig=<hex>`; signing the expiry with the
URL means it cannot be extended, and every link expires. The links to spigot's own files
(`server.protocol.links`) are built from the same two primitives.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from urllib.parse import urlencode

from .numerals import is_digits

MAX_EXPIRES_DIGITS = 12  # unix seconds until the year 33658: anything longer is not a time


def mac(key: str, message: str) -> str:
    return hmac.new(key.encode(), message.encode(), hashlib.sha256).hexdigest()


def matches(keys: Sequence[str], message: str, sig: str) -> bool:
    """Whether `sig` is the MAC of `message` under any key. Every key is tried, whatever
    the first ones said, so the time taken tells nothing about which key or how close."""
    given = sig.lower().encode()
    found = False
    for key in keys:
        found |= hmac.compare_digest(mac(key, message).encode(), given)
    return found


def expiry_problem(expires: str | None, now: float) -> str | None:
    """Why an `expires` value cannot be honoured, or None. Checked after the signature, so
    a forger learns nothing from the order of the answers."""
    if expires is None or not is_digits(expires) or len(expires) > MAX_EXPIRES_DIGITS:
        return "the link's expiry is malformed"
    if int(expires) < now:
        return "the link has expired"
    return None


def signature(secret: str, url: str, expires: int) -> str:
    return mac(secret, f"{expires}:{url}")


def verify(
    keys: Sequence[str], url: str, expires: str | None, sig: str | None, now: float
) -> str | None:
    """None if the proxy link is valid; otherwise why not (for the 403 message)."""
    if not sig or not expires:
        return "the link is not signed"
    if not is_digits(expires) or len(expires) > MAX_EXPIRES_DIGITS:
        return "the link's expiry is malformed"
    if not matches(keys, f"{int(expires)}:{url}", sig):
        return "the link's signature does not match"
    return expiry_problem(expires, now)


def signed_query(secret: str, url: str, expires: int) -> str:
    return urlencode({"url": url, "expires": expires, "sig": signature(secret, url, expires)})
