"""tus header grammar: one row per rule."""

from __future__ import annotations

import base64
import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.protocol.tus import (
    Checksum,
    Concat,
    TusHeaderError,
    encode_metadata,
    parse_checksum,
    parse_concat,
    parse_int,
    parse_metadata,
    upload_id_from_url,
)


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        (None, {}),
        ("", {}),
        (f"filename {b64('a.txt')}", {"filename": "a.txt"}),
        (
            f"filename {b64('ü.txt')},filetype {b64('text/plain')}",
            {"filename": "ü.txt", "filetype": "text/plain"},
        ),
        (f"filename {b64('x')}, is_confidential", {"filename": "x", "is_confidential": ""}),
    ],
)
def test_parse_metadata(value: str | None, parsed: dict[str, str]) -> None:
    assert parse_metadata(value) == parsed


@pytest.mark.parametrize(
    "value",
    [
        "filename not-base64!",
        "filename YQ",  # unpadded
        f"a {b64('1')},a {b64('2')}",  # duplicate key
        f"a {b64('1')} extra",
        " , ",
        "filename " + base64.b64encode(b"\xff\xfe").decode(),  # not UTF-8
    ],
)
def test_parse_metadata_rejects(value: str) -> None:
    with pytest.raises(TusHeaderError):
        parse_metadata(value)


@given(st.dictionaries(st.from_regex(r"[a-z_]{1,10}", fullmatch=True), st.text(max_size=20)))
def test_metadata_round_trip(metadata: dict[str, str]) -> None:
    assert parse_metadata(encode_metadata(metadata)) == metadata


@given(st.text(max_size=60))
def test_parsers_are_total(value: str) -> None:
    """Any input either parses or raises TusHeaderError (a 400), never anything else."""
    for parse in (parse_metadata, parse_checksum, parse_concat):
        with contextlib.suppress(TusHeaderError):
            parse(value)  # type: ignore[operator]
    with contextlib.suppress(TusHeaderError):
        parse_int("Upload-Offset", value)


@pytest.mark.parametrize(("value", "n"), [(None, None), ("0", 0), ("1099511627776", 1 << 40)])
def test_parse_int(value: str | None, n: int | None) -> None:
    assert parse_int("Upload-Length", value) == n


@pytest.mark.parametrize("value", ["-1", "+1", " 1", "1.0", "", "0x10", "99999999999999999999"])
def test_parse_int_rejects(value: str) -> None:
    with pytest.raises(TusHeaderError):
        parse_int("Upload-Offset", value)


def test_parse_checksum() -> None:
    assert parse_checksum("sha1 " + base64.b64encode(b"\x01\x02").decode()) == Checksum(
        "sha1", b"\x01\x02"
    )
    for bad in ["sha1", "sha1 !!", "whirlpool AAAA", ""]:
        with pytest.raises(TusHeaderError):
            parse_checksum(bad)


def test_parse_concat() -> None:
    assert parse_concat(None) is None
    assert parse_concat("partial") == Concat(partial=True)
    assert parse_concat("final;/files/a http://h/files/b") == Concat(
        False, ("/files/a", "http://h/files/b")
    )
    for bad in ["final;", "final", "partial;x", "whole"]:
        with pytest.raises(TusHeaderError):
            parse_concat(bad)


@pytest.mark.parametrize(
    ("url", "upload_id"),
    [
        ("/files/abc", "abc"),
        ("http://h:1/files/abc", "abc"),
        ("https://h/x/files/abc/", "abc"),
        ("abc", "abc"),
    ],
)
def test_upload_id_from_url(url: str, upload_id: str) -> None:
    assert upload_id_from_url(url) == upload_id
