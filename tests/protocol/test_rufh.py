"""The IETF resumable-upload draft's grammar and version rules: one row per rule."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.protocol import rufh
from server.protocol.rufh import Interop


@pytest.mark.parametrize(
    ("headers", "version"),
    [
        ({"Upload-Draft-Interop-Version": "3"}, 3),
        ({"Upload-Draft-Interop-Version": "6"}, 6),
        ({"Upload-Draft-Interop-Version": "9"}, 9),
        ({"Upload-Draft-Interop-Version": "2"}, None),  # older than spigot speaks
        ({"Upload-Draft-Interop-Version": "10"}, None),  # newer: stays a plain request
        ({"Upload-Draft-Interop-Version": "six"}, None),
        ({"Upload-Draft-Interop-Version": "-6"}, None),
        ({"Upload-Draft-Interop-Version": "6.0"}, None),  # a Decimal, not an Integer
        ({"Upload-Incomplete": "?1"}, 3),  # an interop-3 client that sends no version
        ({"Upload-Incomplete": "yes"}, None),
        ({"Upload-Complete": "?1"}, None),  # the final RFC's clients: not a draft request
        ({}, None),
    ],
)
def test_interop_of(headers: dict[str, str], version: int | None) -> None:
    got = rufh.interop_of(headers)
    assert (got.version if got else None) == version


@pytest.mark.parametrize(
    ("version", "headers", "complete"),
    [
        (3, {"Upload-Incomplete": "?1"}, False),
        (3, {"Upload-Incomplete": "?0"}, True),
        (3, {"Upload-Complete": "?1"}, None),  # version 3 knows no Upload-Complete
        (4, {"Upload-Complete": "?1"}, True),
        (9, {"Upload-Complete": "?0"}, False),
        (9, {"Upload-Complete": "?1;x=1"}, True),  # parameters are allowed on an Item
        (9, {"Upload-Complete": "1"}, None),  # an Integer, not a Boolean: ignored
        (9, {"Upload-Complete": "?2"}, None),
        (9, {"Upload-Incomplete": "?1"}, None),
        (9, {}, None),
    ],
)
def test_completeness(version: int, headers: dict[str, str], complete: bool | None) -> None:
    assert rufh.completeness(Interop(version), headers) == complete


@pytest.mark.parametrize(
    ("version", "complete", "header"),
    [
        (3, True, {"Upload-Incomplete": "?0"}),
        (3, False, {"Upload-Incomplete": "?1"}),
        (4, True, {"Upload-Complete": "?1"}),
        (9, False, {"Upload-Complete": "?0"}),
    ],
)
def test_completeness_header(version: int, complete: bool, header: dict[str, str]) -> None:
    assert rufh.completeness_header(Interop(version), complete) == header


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("0", 0),
        ("123456789", 123456789),
        ("999999999999999", 999999999999999),  # the largest sf-integer
        ("1000000000000000", None),  # sixteen digits: not an sf-integer
        ("-1", None),
        ("1.5", None),
        ("?1", None),
        ("", None),
        (None, None),
        ("12, 13", None),  # a List, not an Item
    ],
)
def test_non_negative(value: str | None, parsed: int | None) -> None:
    assert rufh.non_negative(value) == parsed


@given(st.integers(min_value=0, max_value=999_999_999_999_999))
def test_non_negative_round_trips(n: int) -> None:
    assert rufh.non_negative(str(n)) == n


@pytest.mark.parametrize(
    ("version", "rules"),
    [
        # (progress 104s, partial-upload type, Upload-Limit, its age key, problem types)
        (3, (False, False, False, "max-age", False)),
        (4, (False, False, False, "max-age", False)),
        (5, (True, False, False, "max-age", False)),
        (6, (True, True, True, "expires", True)),
        (7, (True, True, True, "max-age", True)),
        (8, (True, True, True, "max-age", True)),
        (9, (True, True, True, "max-age", True)),
    ],
)
def test_version_rules(version: int, rules: tuple[bool, bool, bool, str, bool]) -> None:
    v = Interop(version)
    got = (v.reports_progress, v.partial_upload_type, v.has_limits, v.age_key, v.has_problem_types)
    assert got == rules


@pytest.mark.parametrize(
    ("version", "limits", "header"),
    [
        (5, {"max_size": 10, "max_append_size": 5, "max_age": 60}, {}),  # none before v6
        (6, {"max_size": 10, "max_append_size": 5, "max_age": 60},
         {"Upload-Limit": "max-size=10, max-append-size=5, expires=60"}),
        (7, {"max_size": 10, "max_append_size": 5, "max_age": 60},
         {"Upload-Limit": "max-size=10, max-append-size=5, max-age=60"}),
        (9, {"max_size": 0, "max_append_size": None, "max_age": 60},
         {"Upload-Limit": "max-age=60"}),  # 0 is "unlimited": not said
        (9, {"max_size": 0, "max_append_size": 0, "max_age": None}, {}),
    ],
)  # fmt: skip
def test_limit_header(version: int, limits: dict[str, int | None], header: dict[str, str]) -> None:
    assert rufh.limit_header(Interop(version), **limits) == header


def test_interim_head() -> None:
    head = rufh.interim({"Location": "http://h/files/x", "Upload-Draft-Interop-Version": "9"})
    assert head == (
        b"HTTP/1.1 104 Upload Resumption Supported\r\n"
        b"Location: http://h/files/x\r\n"
        b"Upload-Draft-Interop-Version: 9\r\n"
        b"\r\n"
    )


@pytest.mark.parametrize("bad", ["a\r\nX-Injected: 1", "a\nb"])
def test_interim_refuses_line_breaks(bad: str) -> None:
    with pytest.raises(ValueError, match="would break"):
        rufh.interim({"Location": bad})


def test_problem() -> None:
    assert rufh.problem("mismatching-upload-offset", "t", **{"expected-offset": 5}) == {
        "type": "https://iana.org/assignments/http-problem-types#mismatching-upload-offset",
        "title": "t",
        "expected-offset": 5,
    }
