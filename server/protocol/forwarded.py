"""The external base URL of this server, as the client sees it, for absolute Location headers.

Precedence: the configured public URL, then RFC 7239 Forwarded, then X-Forwarded-Proto and
X-Forwarded-Host, then the request's own scheme and Host. Proxies append to these headers,
so the first element is the one the original client sent to the outermost proxy.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_HOST = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?")
_PROTO = {"http", "https"}


def base_url(
    public_url: str | None,
    forwarded: list[Mapping[str, str]],
    headers: Mapping[str, str],
    scheme: str,
    host: str,
) -> str:
    """`forwarded` is aiohttp's parsed `request.forwarded`; the rest are raw request data."""
    if public_url:
        return public_url.rstrip("/")
    proto = fwd_host = None
    if forwarded:
        proto = forwarded[0].get("proto")
        fwd_host = forwarded[0].get("host")
    proto = proto or _first(headers.get("X-Forwarded-Proto"))
    fwd_host = fwd_host or _first(headers.get("X-Forwarded-Host"))
    if proto is None or proto.lower() not in _PROTO:
        proto = scheme
    # A host that does not look like one (spaces, slashes, '@') is ignored rather than
    # echoed into a Location header.
    if fwd_host is None or _HOST.fullmatch(fwd_host) is None:
        fwd_host = host if _HOST.fullmatch(host or "") else "localhost"
    return f"{proto.lower()}://{fwd_host}"


def _first(value: str | None) -> str | None:
    if not value:
        return None
    return value.split(",", 1)[0].strip() or None
