"""RFC 9110 section 13: one row per precondition rule, in the RFC's order of evaluation."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.protocol.conditional import (
    Outcome,
    Validators,
    evaluate,
    http_date,
    parse_etags,
    range_allowed,
)

ETAG = '"abc123"'
LM = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
V = Validators(etag=ETAG, last_modified=LM)
SAME = http_date(LM)
EARLIER = "Thu, 01 Jan 2026 00:00:00 GMT"
LATER = "Sat, 03 Jan 2026 00:00:00 GMT"

P, NM, PF = Outcome.PROCEED, Outcome.NOT_MODIFIED, Outcome.PRECONDITION_FAILED


@pytest.mark.parametrize(
    ("method", "headers", "outcome"),
    [
        ("GET", {}, P),
        # If-Match: strong comparison
        ("GET", {"If-Match": ETAG}, P),
        ("GET", {"If-Match": '"other", ' + ETAG}, P),
        ("GET", {"If-Match": "*"}, P),
        ("GET", {"If-Match": '"other"'}, PF),
        ("GET", {"If-Match": "W/" + ETAG}, PF),  # weak never matches strongly
        ("GET", {"If-Match": "garbage"}, PF),
        # If-Unmodified-Since, only without If-Match
        ("GET", {"If-Unmodified-Since": SAME}, P),
        ("GET", {"If-Unmodified-Since": LATER}, P),
        ("GET", {"If-Unmodified-Since": EARLIER}, PF),
        ("GET", {"If-Unmodified-Since": "not a date"}, P),  # invalid: ignored
        ("GET", {"If-Match": ETAG, "If-Unmodified-Since": EARLIER}, P),
        # If-None-Match: weak comparison; 304 for GET/HEAD, 412 otherwise
        ("GET", {"If-None-Match": ETAG}, NM),
        ("HEAD", {"If-None-Match": ETAG}, NM),
        ("GET", {"If-None-Match": "W/" + ETAG}, NM),
        ("GET", {"If-None-Match": '"x", "y", ' + ETAG}, NM),
        ("GET", {"If-None-Match": "*"}, NM),
        ("GET", {"If-None-Match": '"other"'}, P),
        ("DELETE", {"If-None-Match": ETAG}, PF),
        # If-Modified-Since, only without If-None-Match and only for GET/HEAD
        ("GET", {"If-Modified-Since": SAME}, NM),
        ("GET", {"If-Modified-Since": LATER}, NM),
        ("GET", {"If-Modified-Since": EARLIER}, P),
        ("GET", {"If-Modified-Since": "yesterday"}, P),
        ("GET", {"If-None-Match": '"other"', "If-Modified-Since": LATER}, P),
        ("DELETE", {"If-Modified-Since": LATER}, P),
        # If-Match failing wins over If-None-Match
        ("GET", {"If-Match": '"other"', "If-None-Match": ETAG}, PF),
    ],
)
def test_evaluate(method: str, headers: dict[str, str], outcome: Outcome) -> None:
    assert evaluate(method, headers, V) is outcome


@pytest.mark.parametrize(
    ("if_range", "allowed"),
    [
        (None, True),
        (ETAG, True),
        ("W/" + ETAG, False),  # If-Range needs a strong match
        ('"other"', False),
        (SAME, True),
        (EARLIER, False),  # a date must match exactly, not merely be later
        (LATER, False),
        ("not a validator", False),
        (ETAG + ", " + ETAG, False),  # a list is not a valid If-Range
    ],
)
def test_range_allowed(if_range: str | None, allowed: bool) -> None:
    headers = {} if if_range is None else {"If-Range": if_range}
    assert range_allowed(headers, V) is allowed


def test_parse_etags() -> None:
    assert parse_etags('"a", W/"b",""') == [(False, '"a"'), (True, '"b"'), (False, '""')]
    assert parse_etags('"a" "b"') is None
    assert parse_etags("a") is None


@given(
    st.dictionaries(
        st.sampled_from(
            ["If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since", "If-Range"]
        ),
        st.text(max_size=40),
    ),
    st.sampled_from(["GET", "HEAD", "PUT", "DELETE"]),
)
def test_conditionals_are_total(headers: dict[str, str], method: str) -> None:
    assert evaluate(method, headers, V) in Outcome
    assert range_allowed(headers, V) in (True, False)
