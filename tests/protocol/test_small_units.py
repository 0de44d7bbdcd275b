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


@pytest.mark.parametrize(
    ("query", "page"),
    [
        ({"order": "id"}, None),  # the default order, named: still the whole listing
        ({"order": "id", "limit": "5"}, paging.Page(5, "")),
        ({"order": "newest"}, paging.NewestPage(paging.MAX_LIMIT)),  # never unbounded
        ({"order": "newest", "limit": "3"}, paging.NewestPage(3)),
        ({"order": "newest", "before": ""}, paging.NewestPage(paging.MAX_LIMIT)),
        (
            {"order": "newest", "limit": "2", "before": f"1764912345.6789012~{ID}"},
            paging.NewestPage(2, (1764912345.6789012, ID)),
        ),
        ({"order": "newest", "before": f"0.0~{ID}"}, paging.NewestPage(1000, (0.0, ID))),
        ({"order": "newest", "before": f"17~{ID}"}, paging.NewestPage(1000, (17.0, ID))),
    ],
)
def test_parse_newest_page(query: dict[str, str], page: paging.NewestPage | None) -> None:
    assert paging.parse_page(query) == page


@pytest.mark.parametrize(
    ("query", "what"),
    [
        ({"order": "oldest"}, "order"),
        ({"order": ""}, "order"),
        ({"order": "newest", "limit": "0"}, "limit"),
        ({"order": "newest", "after": ID}, "after"),
        ({"before": f"1.5~{ID}"}, "before"),  # a newest cursor in id order
        ({"order": "newest", "before": ID}, "before"),
        ({"order": "newest", "before": f"nan~{ID}"}, "before"),
        ({"order": "newest", "before": f"inf~{ID}"}, "before"),
        ({"order": "newest", "before": f"1e999~{ID}"}, "before"),
        ({"order": "newest", "before": f"-1.0~{ID}"}, "before"),
        ({"order": "newest", "before": f"1.0~{ID[:-1]}"}, "before"),
        ({"order": "newest", "before": f"1.0~{ID}~{ID}"}, "before"),
        ({"order": "newest", "before": f"{'9' * 13}~{ID}"}, "before"),
        ({"order": "newest", "before": "\u0661.\u0660~" + ID}, "before"),  # Arabic-Indic digits
    ],
)
def test_parse_newest_page_refuses(query: dict[str, str], what: str) -> None:
    with pytest.raises(ValueError, match=rf"^{what} must"):
        paging.parse_page(query)


@pytest.mark.parametrize("created", [0.0, 17.0, 1764912345.6789012, 1e-7 + 3, 999999999999.9])
def test_a_cursor_reads_back_the_same_float(created: float) -> None:
    assert paging.parse_cursor(paging.format_cursor((created, ID))) == (created, ID)


def _ids(n: int) -> list[str]:
    return [f"{i:022d}" for i in range(n)]


@pytest.mark.parametrize(
    ("created", "limit", "before", "page", "last"),
    [
        # newest first whatever order they come in, and a cursor when more are left
        ([3.0, 1.0, 2.0, 5.0, 4.0], 2, None, [3, 4], 4),
        ([3.0, 1.0, 2.0, 5.0, 4.0], 2, (4.0, _ids(5)[4]), [0, 2], 2),
        ([3.0, 1.0, 2.0, 5.0, 4.0], 2, (2.0, _ids(5)[2]), [1], None),
        ([3.0, 1.0, 2.0, 5.0, 4.0], 5, None, [3, 4, 0, 2, 1], None),  # exactly one page
        ([3.0, 1.0, 2.0, 5.0, 4.0], 4, None, [3, 4, 0, 2], 2),  # one over: a next page
        ([], 3, None, [], None),
        # the same created time: the id breaks the tie, so no file is shown twice or never
        ([7.0, 7.0, 7.0, 7.0], 2, None, [3, 2], 2),
        ([7.0, 7.0, 7.0, 7.0], 2, (7.0, _ids(5)[2]), [1, 0], None),
        # a cursor whose file went away still divides the rest where it stood
        ([1.0, 2.0, 4.0], 5, (3.0, "ZZZZZZZZZZZZZZZZZZZZZZ"), [1, 0], None),
    ],
)
def test_newest_first(
    created: list[float],
    limit: int,
    before: paging.Key | None,
    page: list[int],
    last: int | None,
) -> None:
    ids = _ids(len(created))
    newest: paging.NewestFirst[int] = paging.NewestFirst(paging.NewestPage(limit, before))
    for i, (at, file_id) in enumerate(zip(created, ids, strict=True)):
        newest.offer((at, file_id), i)
    items, cursor = newest.page()
    assert items == page
    assert cursor == (None if last is None else (created[last], ids[last]))
    assert newest.seen == len(created)


def test_newest_first_holds_only_a_page() -> None:
    newest: paging.NewestFirst[int] = paging.NewestFirst(paging.NewestPage(10))
    for i in range(10_000):
        newest.offer((float(i % 977), f"{i:022d}"), i)
        assert len(newest._held) <= 11
    items, cursor = newest.page()
    assert [i % 977 for i in items] == [976] * 10 and cursor is not None


def test_next_newest_link() -> None:
    page = paging.NewestPage(5, None)
    link = paging.next_newest_link("https://x/files/", page, (1.25, ID), {"owner": "a b"})
    assert link == f'<https://x/files/?owner=a+b&order=newest&limit=5&before=1.25~{ID}>; rel="next"'
