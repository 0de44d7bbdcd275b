"""One row per Range rule in RFC 9110 section 14 and the nginx-style limits."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.protocol.ranges import MAX_RANGES, UNSATISFIABLE, ByteRange, coalesce, parse_range

R = ByteRange
SIZE = 1000


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        # absent, or not a byte range we understand: the whole representation
        (None, None),
        ("", None),
        ("bytes", None),
        ("bytes=", None),
        ("items=0-5", None),
        ("bytes=abc", None),
        ("bytes=5-1", None),  # last < first: invalid, so ignored
        ("bytes=-", None),
        ("bytes=1-2-3", None),
        ("bytes=+1-2", None),
        ("bytes=0x10-20", None),
        ("bytes=0-1,zz", None),  # one bad spec invalidates the header
        ("bytes = 0-1", [R(0, 1)]),  # unit is trimmed and case-insensitive
        ("BYTES=0-1", [R(0, 1)]),
        # single ranges
        ("bytes=0-0", [R(0, 0)]),
        ("bytes=0-499", [R(0, 499)]),
        ("bytes=500-", [R(500, 999)]),
        ("bytes=-200", [R(800, 999)]),
        ("bytes=-5000", [R(0, 999)]),  # a suffix longer than the file is the whole file
        ("bytes=900-5000", [R(900, 999)]),  # last-pos is clamped
        ("bytes=999-999", [R(999, 999)]),
        # multiple ranges, sorted and coalesced
        ("bytes=0-9,20-29", [R(0, 9), R(20, 29)]),
        ("bytes=20-29,0-9", [R(0, 9), R(20, 29)]),
        ("bytes=0-9,5-14", [R(0, 14)]),  # overlapping
        ("bytes=0-9,10-19", [R(0, 19)]),  # adjacent
        ("bytes=0-9, ,20-29", [R(0, 9), R(20, 29)]),  # empty list elements are allowed
        ("bytes=0-9,2000-3000", [R(0, 9)]),  # the unsatisfiable one is dropped
        ("bytes=0-9,-0", [R(0, 9)]),
        # unsatisfiable: 416
        ("bytes=1000-", UNSATISFIABLE),
        ("bytes=1000-2000", UNSATISFIABLE),
        ("bytes=-0", UNSATISFIABLE),
        ("bytes=5000-6000,7000-", UNSATISFIABLE),
        # abuse limits, as nginx: ignore Range and send it all
        ("bytes=" + ",".join(f"{i * 10}-{i * 10 + 1}" for i in range(MAX_RANGES)), "16 parts"),
        ("bytes=" + ",".join(f"{i * 10}-{i * 10 + 1}" for i in range(MAX_RANGES + 1)), None),
        ("bytes=0-999,0-999", None),  # adds up to more than the file
        ("bytes=0-600,400-999", None),
        ("bytes=0-499,500-999", [R(0, 999)]),  # exactly the file is fine
    ],
)
def test_parse_range(header: str | None, expected: object) -> None:
    result = parse_range(header, SIZE)
    if expected == "16 parts":
        assert isinstance(result, list) and len(result) == MAX_RANGES
    else:
        assert result == expected


def test_empty_representation_ignores_range() -> None:
    assert parse_range("bytes=0-", 0) is None
    assert parse_range("bytes=-5", 0) is None


def test_byte_range_content_range() -> None:
    assert R(0, 9).content_range(100) == "bytes 0-9/100"
    assert R(0, 9).length == 10


def test_coalesce_nested() -> None:
    assert coalesce([R(0, 100), R(10, 20), R(101, 101)]) == [R(0, 101)]


range_text = st.text(alphabet="bytes=0123456789-, \t;xX", max_size=60)


@given(header=st.one_of(range_text, st.text(max_size=60)), size=st.integers(0, 10**12))
def test_parse_range_is_total_and_sound(header: str, size: int) -> None:
    """Any header: no exception, and any ranges returned are in bounds, sorted, disjoint."""
    result = parse_range(header, size)
    if isinstance(result, list):
        assert result and len(result) <= MAX_RANGES
        assert sum(r.length for r in result) <= size
        for r in result:
            assert 0 <= r.first <= r.last < size
        for a, b in itertools.pairwise(result):
            assert a.last + 1 < b.first
