"""RFC 9530 digest fields: what is read of a client's, and what spigot sends."""

from __future__ import annotations

import base64
import hashlib

import pytest

from server.protocol import digests


def sf_bytes(data: bytes) -> str:
    return ":" + base64.b64encode(data).decode() + ":"


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        (f"sha-256={sf_bytes(b'ab')}", {"sha256": b"ab"}),
        (f"sha-512={sf_bytes(b'cd')}, sha-256={sf_bytes(b'ab')}",
         {"sha512": b"cd", "sha256": b"ab"}),
        (f"md5={sf_bytes(b'ab')}", {}),  # deprecated and not checked
        ("sha-256=abc", {}),  # a Token, not a Byte Sequence
        ("sha-256=::", {}),  # empty
        ("sha-256=:!!!:", {}),  # malformed: the whole field is ignored
        (None, {}),
    ],
)  # fmt: skip
def test_digests(value: str | None, parsed: dict[str, bytes]) -> None:
    assert digests.digests(value) == parsed


def test_digest_header_is_rfc9530_sha256() -> None:
    digest = hashlib.sha256(b"hello").hexdigest()
    header = digests.digest_header(digest)
    assert header == f"sha-256={sf_bytes(hashlib.sha256(b'hello').digest())}"
    assert digests.digests(header) == {"sha256": bytes.fromhex(digest)}


MD5_OF_HELLO = hashlib.md5(b"hello").digest()


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        (None, None),
        (base64.b64encode(MD5_OF_HELLO).decode(), MD5_OF_HELLO),
        (" " + base64.b64encode(MD5_OF_HELLO).decode() + " ", MD5_OF_HELLO),  # OWS
    ],
)
def test_content_md5(value: str | None, parsed: bytes | None) -> None:
    assert digests.content_md5(value) == parsed


@pytest.mark.parametrize(
    "value",
    [
        "",  # no digest at all
        MD5_OF_HELLO.hex(),  # hex, as md5sum prints it: S3 wants base64
        base64.b64encode(MD5_OF_HELLO[:15]).decode(),  # 15 bytes
        base64.b64encode(hashlib.sha256(b"hello").digest()).decode(),  # a sha256
        "!!!!",
        "\u00e9\u00e9\u00e9\u00e9",  # not ASCII
        base64.b64encode(MD5_OF_HELLO).decode()[:-2],  # padding cut off
    ],
)
def test_a_malformed_content_md5_is_refused(value: str) -> None:
    with pytest.raises(digests.BadDigest):
        digests.content_md5(value)


@pytest.mark.parametrize(
    ("value", "wanted"),
    [
        ("SHA-512;q=1, SHA-256;q=1, SHA;q=0.1", True),  # what aria2 sends
        ("sha-256", True),
        ("SHA-256;q=0.3", True),
        ("MD5, SHA-256 ; q=1", True),
        ("SHA-256;q=0", False),  # refused
        ("SHA-256;q=x", False),  # malformed
        ("SHA-256;q=2", False),  # out of range
        ("SHA-512, MD5", False),
        ("SHA-2560", False),
        ("", False),
        (None, False),
    ],
)
def test_wants_sha256(value: str | None, wanted: bool) -> None:
    assert digests.wants_sha256(value) is wanted


def test_instance_digest_is_rfc3230_sha256() -> None:
    digest = hashlib.sha256(b"hello").hexdigest()
    encoded = base64.b64encode(hashlib.sha256(b"hello").digest()).decode()
    assert digests.instance_digest(digest) == f"SHA-256={encoded}"
