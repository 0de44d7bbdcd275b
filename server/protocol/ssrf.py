"""Which upstream addresses the proxy may connect to (go-camo's rules), as pure functions.

The check runs on the addresses a connection would actually use: after DNS, at connect
time, for every redirect hop. A hostname that resolves to a private address is refused
(DNS rebinding included), and so is every spelling of one: decimal (2130706433), hex
(0x7f000001), short (127.1) and IPv4-mapped IPv6 (::ffff:127.0.0.1) forms reach the check
as the address the resolver makes of them.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_SCHEMES = {"http", "https"}
_NUMERIC = re.compile(r"[0-9a-fA-FxX.]+")


class Refused(ValueError):
    """The target may not be fetched; the message says why, for a 403 body."""


def refusal(ip: IPAddress) -> str | None:
    """Why connecting to `ip` is refused, or None if it is a public unicast address."""
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if mapped is not None:
            reason = refusal(mapped)
            return f"{reason} (IPv4 inside IPv6)" if reason else None
    if ip.is_loopback:
        return "loopback address"
    if ip.is_link_local:
        return "link-local address (cloud metadata lives here)"
    if ip.is_multicast:
        return "multicast address"
    if ip.is_unspecified or ip in ipaddress.ip_network("0.0.0.0/8"):
        return "unspecified address"
    if ip.is_private or ip.is_reserved or not ip.is_global:
        return "private or reserved address"
    return None


def check_address(ip: str | IPAddress) -> None:
    address = ipaddress.ip_address(ip) if isinstance(ip, str) else ip
    reason = refusal(address)
    if reason is not None:
        raise Refused(f"refusing {address}: {reason}")


def check_url(url: str) -> tuple[str, str, int]:
    """The scheme, host and port of an acceptable target URL; Refused otherwise."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise Refused("not a valid URL") from None
    if parts.scheme not in _SCHEMES:
        raise Refused("only http and https URLs can be proxied")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise Refused("URLs with credentials are refused")
    host = parts.hostname
    if not host:
        raise Refused("the URL has no host")
    return parts.scheme, host, port or (443 if parts.scheme == "https" else 80)


def literal_address(host: str) -> IPAddress | None:
    """The address a host names by number, in any spelling the C library accepts (127.1,
    2130706433, 0x7f000001, 0177.0.0.1 as well as the canonical forms), else None."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    if not _NUMERIC.fullmatch(host):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None
