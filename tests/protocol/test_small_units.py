"""Byteranges framing, Content-Disposition, the forwarded base URL, ASCII digits and paging."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.protocol import byteranges, disposition, paging
from server.protocol.forwarded import base_url
from server.protocol.numerals import is_digits
from server.protocol.ranges import ByteRange
from storage.names import sanitize_name


def test_byteranges_layout_is_exact() -> None:
    lay = byteranges.layout([ByteRange(0, 1), ByteRange(5, 7)], 10, "text/plain", boundary="B")
    assert lay.content_type == "multipart/byteranges; boundary=B"
    body = b"".join(p.head + b"x" * p.range.length for p in lay.parts) + lay.tail
    assert body == (
        b"--B\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-1/10\r\n\r\nxx"
        b"\r\n--B\r\nContent-Type: text/plain\r\nContent-Range: bytes 5-7/10\r\n\r\nxxx"
        b"\r\n--B--\r\n"
    )
    assert lay.content_length == len(body)


@pytest.mark.parametrize(
    ("header", "name"),
    [
        (None, None),
        ("", None),
        ('attachment; filename="a.txt"', "a.txt"),
        ("attachment; filename=a.txt", "a.txt"),
        ("inline; filename*=UTF-8''%E2%82%AC%20rates.pdf", "€ rates.pdf"),
        ("attachment; filename=\"fallback.pdf\"; filename*=UTF-8''%C3%A9t%C3%A9.pdf", "été.pdf"),
        ('attachment; filename="../../etc/passwd"', "../../etc/passwd"),  # sanitised later
        ("attachment", None),
        ("attachment; filename*=BOGUS''%zz", None),
    ],
)
def test_filename_from_header(header: str | None, name: str | None) -> None:
    assert disposition.filename_from_header(header) == name


@pytest.mark.parametrize(
    ("name", "attachment", "header"),
    [
        ("a.txt", False, 'inline; filename="a.txt"'),
        ("a.txt", True, 'attachment; filename="a.txt"'),
        (
            "€ rates.pdf",
            False,
            "inline; filename=\"_ rates.pdf\"; filename*=UTF-8''%E2%82%AC%20rates.pdf",
        ),
        (
            'say "hi".txt',
            True,
            "attachment; filename=\"say _hi_.txt\"; filename*=UTF-8''say%20%22hi%22.txt",
        ),
    ],
)
def test_header_for(name: str, attachment: bool, header: str) -> None:
    assert disposition.header_for(name, attachment=attachment) == header


@given(st.text(max_size=80))
def test_disposition_round_trip_and_total(raw: str) -> None:
    """Whatever a client sends, parsing never raises; any name we store reads back intact."""
    disposition.filename_from_header(raw)
    disposition.filename_from_header("attachment; filename*=" + raw)
    name = sanitize_name(raw)
    header = disposition.header_for(name, attachment=True)
    assert "\r" not in header and "\n" not in header
    assert disposition.filename_from_header(header) == name


@pytest.mark.parametrize(
    ("public", "forwarded", "headers", "expected"),
    [
        (None, [], {}, "http://example.test:8080"),
        ("https://files.example/", [], {}, "https://files.example"),
        (None, [{"proto": "https", "host": "a.example"}], {}, "https://a.example"),
        (
            None,
            [],
            {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "b.example"},
            "https://b.example",
        ),
        (
            None,
            [],
            {"X-Forwarded-Proto": "https, http", "X-Forwarded-Host": "c.example, d"},
            "https://c.example",
        ),
        (
            None,
            [{"proto": "https"}],
            {"X-Forwarded-Host": "e.example:8443"},
            "https://e.example:8443",
        ),
        (None, [], {"X-Forwarded-Proto": "gopher"}, "http://example.test:8080"),
        (None, [], {"X-Forwarded-Host": "evil.example/path@x"}, "http://example.test:8080"),
        (None, [], {"X-Forwarded-Host": "[::1]:9"}, "http://[::1]:9"),
    ],
)
def test_base_url(
    public: str | None, forwarded: list[dict[str, str]], headers: dict[str, str], expected: str
) -> None:
    assert base_url(public, forwarded, headers, "http", "example.test:8080") == expected


@pytest.mark.parametrize(
    ("text", "digits"),
    [
        ("0", True),
        ("1790000000", True),
        ("", False),
        ("²", False),  # isdigit() says yes, int() says no: the 500 hypothesis found
        ("٣", False),  # int() would read it as 3
        ("1²", False),
        ("+1", False),
        (" 1", False),
        ("1_000", False),
    ],
)
def test_digits_are_ascii_digits(text: str, digits: bool) -> None:
    assert is_digits(text) is digits


# -- paging ---------------------------------------------------------------------------------

ID = "A" * 22


@pytest.mark.parametrize(
    ("query", "page"),
    [
        ({}, None),  # the whole listing, as before pages
        ({"owner": "bob"}, None),
        ({"limit": "10"}, paging.Page(10, "")),
        ({"limit": "1000"}, paging.Page(1000, "")),
        ({"limit": "0007"}, paging.Page(7, "")),
        ({"after": ID}, paging.Page(paging.MAX_LIMIT, ID)),
        ({"after": ""}, paging.Page(paging.MAX_LIMIT, "")),
        ({"limit": "1", "after": ID}, paging.Page(1, ID)),
    ],
)
def test_parse_page(query: dict[str, str], page: paging.Page | None) -> None:
    assert paging.parse_page(query) == page


@pytest.mark.parametrize(
    "query",
    [
        {"limit": "0"},
        {"limit": "1001"},
        {"limit": "-1"},
        {"limit": "1e3"},
        {"limit": ""},
        {"limit": "٣"},
        {"limit": "9" * 5000},  # int() of it would be Python's own ValueError
        {"after": "A" * 21},
        {"after": "../" + "A" * 19},
    ],
)
def test_parse_page_refuses(query: dict[str, str]) -> None:
    with pytest.raises(ValueError, match=r"^(limit|after) must be"):
        paging.parse_page(query)


def test_next_link_keeps_the_other_parameters() -> None:
    link = paging.next_link("https://x/files/", paging.Page(5, ""), ID, {"owner": "a b&c"})
    assert link == f'<https://x/files/?owner=a+b%26c&limit=5&after={ID}>; rel="next"'
