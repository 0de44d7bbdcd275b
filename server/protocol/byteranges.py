"""multipart/byteranges framing (RFC 9110 section 14.6), computed before any byte is sent.

Knowing every part's header up front gives the response an exact Content-Length, so clients
such as aria2 and curl can tell a complete response from a truncated one.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from .ranges import ByteRange


@dataclass(frozen=True, slots=True)
class Part:
    head: bytes  # boundary line and part headers, up to and including the blank line
    range: ByteRange


@dataclass(frozen=True, slots=True)
class Layout:
    content_type: str
    parts: list[Part]
    tail: bytes
    content_length: int


def layout(
    ranges: list[ByteRange], size: int, content_type: str, boundary: str | None = None
) -> Layout:
    boundary = boundary or secrets.token_hex(16)
    parts = []
    for i, r in enumerate(ranges):
        lead = b"" if i == 0 else b"\r\n"
        head = (
            f"--{boundary}\r\n"
            f"Content-Type: {content_type}\r\n"
            f"Content-Range: {r.content_range(size)}\r\n\r\n"
        ).encode("latin-1")
        parts.append(Part(lead + head, r))
    tail = f"\r\n--{boundary}--\r\n".encode("latin-1")
    total = sum(len(p.head) + p.range.length for p in parts) + len(tail)
    return Layout(f"multipart/byteranges; boundary={boundary}", parts, tail, total)
