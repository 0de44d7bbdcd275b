"""`Content-Digest` and `Repr-Digest` (RFC 9530): a client's digest of what it sends, and
spigot's of what it stored. Also the fields RFC 9530 replaces that clients still use:
`Content-MD5` (RFC 1864), which S3 takes on PutObject and UploadPart, and RFC 3230's
`Want-Digest` and `Digest`, which aria2 asks for and checks.

Both are Structured Field Dictionaries of algorithm to Byte Sequence. Only algorithms
hashlib computes are read; the rest, and a malformed field, are left out, as RFC 9530 lets
a recipient ignore what it does not support. Nothing here knows about aiohttp or storage.
"""

from __future__ import annotations

import base64
import binascii
from typing import Final

from http_sfv.dictionary import Dictionary

# RFC 9530's algorithms that hashlib computes, by their registered names.
ALGORITHMS: Final = {"sha-256": "sha256", "sha-512": "sha512"}


def digests(value: str | None) -> dict[str, bytes]:
    """A Repr-Digest or Content-Digest field: the algorithms spigot can check, by hashlib
    name, with their digests. Unknown algorithms are left out; a malformed field is empty."""
    if value is None:
        return {}
    parsed = Dictionary()
    try:
        parsed.parse(value.encode("latin-1"))
    except (ValueError, UnicodeEncodeError):
        return {}
    found: dict[str, bytes] = {}
    for key, member in parsed.items():
        digest = getattr(member, "value", None)
        if key in ALGORITHMS and isinstance(digest, bytes) and digest:
            found[ALGORITHMS[key]] = digest
    return found


def digest_header(sha256_hex: str) -> str:
    """The field for a stored file's sha256, as `Repr-Digest` sends it."""
    return f"sha-256=:{base64.b64encode(bytes.fromhex(sha256_hex)).decode()}:"


def instance_digest(sha256_hex: str) -> str:
    """The same sha256 as RFC 3230's `Digest` field gives it (RFC 9530 obsoletes it, but
    aria2 still reads it, and checks the file it downloaded against it)."""
    return f"SHA-256={base64.b64encode(bytes.fromhex(sha256_hex)).decode()}"


def wants_sha256(want_digest: str | None) -> bool:
    """Whether an RFC 3230 `Want-Digest` accepts SHA-256: named, with a q above 0. aria2
    sends `SHA-512;q=1, SHA-256;q=1, SHA;q=0.1` on every request. A malformed q is a no."""
    for item in (want_digest or "").split(","):
        name, _, params = item.partition(";")
        if name.strip().lower() != "sha-256":
            continue
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        return 0.0 < q <= 1.0
    return False


class BadDigest(ValueError):
    """A `Content-MD5` that is not the base64 of 16 bytes (S3's InvalidDigest)."""


def content_md5(value: str | None) -> bytes | None:
    """A `Content-MD5` field's 16-byte MD5, or None without one.

    Unlike an RFC 9530 field, a malformed one is refused (BadDigest), not ignored: S3 answers
    it with 400 InvalidDigest, and a client that sends it means the body to be checked."""
    if value is None:
        return None
    try:
        digest = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise BadDigest("Content-MD5 is not base64") from None
    if len(digest) != 16:
        raise BadDigest(f"Content-MD5 is {len(digest)} bytes, not an MD5's 16")
    return digest
