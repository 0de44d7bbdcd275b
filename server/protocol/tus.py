"""tus 1.0 header grammar (tus.io/protocols/resumable-upload), as pure, total functions.

Every parser raises TusHeaderError with a message fit for the client; the routes turn it
into a 400. Nothing here knows about storage or aiohttp.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Final

TUS_VERSION: Final = "1.0.0"
EXTENSIONS: Final = (
    "creation,creation-with-upload,creation-defer-length,termination,"
    "concatenation,checksum,expiration"
)
CHECKSUM_ALGORITHMS: Final = ("sha1", "md5", "sha256", "crc32")
OFFSET_TYPE: Final = "application/offset+octet-stream"

_INT = re.compile(r"\d{1,19}")  # non-negative, no sign, no spaces: tus says so
_KEY = re.compile(r"[^\s,]+")


class TusHeaderError(ValueError):
    """A tus header is malformed; the message says which and why."""


def parse_int(name: str, value: str | None) -> int | None:
    """A non-negative integer header (Upload-Offset, Upload-Length), None if absent."""
    if value is None:
        return None
    if _INT.fullmatch(value) is None:
        raise TusHeaderError(f"{name} must be a non-negative integer, not {value!r}")
    return int(value)


def parse_metadata(value: str | None) -> dict[str, str]:
    """Upload-Metadata: `key base64value` pairs, comma separated; a value may be absent.

    Strict, as the issue asks: keys are unique and free of spaces and commas, values are
    canonical base64 of UTF-8 text. Anything else is the client's bug, answered with 400.
    """
    if value is None or not value.strip():
        return {}
    result: dict[str, str] = {}
    for pair in value.split(","):
        parts = pair.strip().split(" ")
        if len(parts) > 2 or not _KEY.fullmatch(parts[0]):
            raise TusHeaderError(f"Upload-Metadata pair {pair.strip()!r} is not 'key base64'")
        key = parts[0]
        if key in result:
            raise TusHeaderError(f"Upload-Metadata key {key!r} appears twice")
        result[key] = _b64_text(key, parts[1]) if len(parts) == 2 else ""
    return result


def _b64_text(key: str, encoded: str) -> str:
    try:
        return base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise TusHeaderError(f"Upload-Metadata value of {key!r} is not base64 UTF-8") from None


def encode_metadata(metadata: dict[str, str]) -> str:
    return ",".join(
        f"{k} {base64.b64encode(v.encode()).decode()}" if v else k for k, v in metadata.items()
    )


@dataclass(frozen=True, slots=True)
class Checksum:
    algorithm: str
    digest: bytes


def parse_checksum(value: str) -> Checksum:
    """Upload-Checksum: `algorithm base64digest`. An unknown algorithm is the caller's 400."""
    algorithm, _, encoded = value.strip().partition(" ")
    if algorithm not in CHECKSUM_ALGORITHMS:
        raise TusHeaderError(
            f"Upload-Checksum algorithm {algorithm!r} is not one of {','.join(CHECKSUM_ALGORITHMS)}"
        )
    try:
        digest = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise TusHeaderError("Upload-Checksum digest is not base64") from None
    if not digest:
        raise TusHeaderError("Upload-Checksum digest is empty")
    return Checksum(algorithm, digest)


@dataclass(frozen=True, slots=True)
class Concat:
    partial: bool
    parts: tuple[str, ...] = ()  # for a final upload: the partial uploads' URLs or paths


def parse_concat(value: str | None) -> Concat | None:
    """Upload-Concat: `partial`, or `final;URL URL ...` (absolute URLs or paths)."""
    if value is None:
        return None
    value = value.strip()
    if value == "partial":
        return Concat(partial=True)
    kind, sep, rest = value.partition(";")
    if kind.strip() != "final" or not sep:
        raise TusHeaderError("Upload-Concat must be 'partial' or 'final;<url> <url> ...'")
    parts = tuple(rest.split())
    if not parts:
        raise TusHeaderError("Upload-Concat final names no partial uploads")
    return Concat(partial=False, parts=parts)


def upload_id_from_url(url: str) -> str:
    """The id in a partial upload's URL or path: its last path segment."""
    path = re.sub(r"^[a-zA-Z][a-zA-Z0-9+.-]*://[^/]*", "", url).split("?", 1)[0]
    return path.rstrip("/").rsplit("/", 1)[-1]
