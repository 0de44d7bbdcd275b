"""The pure units behind access control: signed links, the Bearer header, log redaction,
protected mode. Tables first, then hypothesis: no input makes them raise anything but their
own refusal, and no tampered link passes."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from server.auth.exposure import exposure_problem, is_loopback
from server.protocol import links, signing
from server.protocol.bearer import BadAuthorization, bearer_token
from server.settings import Settings

KEY = "k" * 32
OLD = "o" * 32
ID = "A" * 22
NOW = 1_800_000_000.0
LATER = int(NOW) + 3600


def query(qs: str) -> dict[str, str]:
    from urllib.parse import parse_qsl

    return dict(parse_qsl(qs, keep_blank_values=True))


def test_download_link_round_trip_and_kinds_stay_apart() -> None:
    q = query(links.file_query(KEY, links.DOWNLOAD, ID, LATER))
    grant = links.verify([KEY], [links.DOWNLOAD], q, ID, NOW)
    assert grant == links.Grant(links.DOWNLOAD, LATER, upload_id=ID)
    with pytest.raises(links.LinkRefused, match="does not match"):
        links.verify([KEY], [links.RESUME], q, ID, NOW)  # a download link is not a resume one
    with pytest.raises(links.LinkRefused, match="does not match"):
        links.verify([KEY], [links.DOWNLOAD], q, "B" * 22, NOW)  # nor for another file


def test_upload_link_terms_are_signed() -> None:
    terms = links.UploadTerms(max_size=2 << 30, owner="alice", type="video/*")
    q = query(links.upload_query(KEY, terms, LATER))
    assert q["max_size"] == str(2 << 30) and q["owner"] == "alice" and q["type"] == "video/*"
    assert links.verify([KEY], [links.UPLOAD], q, None, NOW).terms == terms
    for field, value in [("max_size", str(3 << 30)), ("owner", "mallory"), ("type", "*/*")]:
        with pytest.raises(links.LinkRefused):
            links.verify([KEY], [links.UPLOAD], {**q, field: value}, None, NOW)
    dropped = {k: v for k, v in q.items() if k != "type"}
    with pytest.raises(links.LinkRefused, match="does not match"):
        links.verify([KEY], [links.UPLOAD], dropped, None, NOW)


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"expires": str(LATER + 1)}, "does not match"),
        ({"sig": "0" * 64}, "does not match"),
        ({"sig": "xyz"}, "signature is malformed"),
        ({"sig": ""}, "signature is malformed"),
        ({"expires": "soon"}, "expiry is malformed"),
        ({"expires": "9" * 13}, "expiry is malformed"),
    ],
)
def test_tampered_links_are_refused(change: dict[str, str], why: str) -> None:
    q = query(links.file_query(KEY, links.DOWNLOAD, ID, LATER))
    with pytest.raises(links.LinkRefused, match=why):
        links.verify([KEY], [links.DOWNLOAD], {**q, **change}, ID, NOW)


def test_expiry_and_rotation() -> None:
    past = query(links.file_query(KEY, links.DOWNLOAD, ID, int(NOW) - 1))
    with pytest.raises(links.LinkRefused, match="expired"):
        links.verify([KEY], [links.DOWNLOAD], past, ID, NOW)
    signed_by_old = query(links.file_query(OLD, links.DOWNLOAD, ID, LATER))
    assert links.verify([KEY, OLD], [links.DOWNLOAD], signed_by_old, ID, NOW).upload_id == ID
    with pytest.raises(links.LinkRefused):  # the old key dropped: its links stop working
        links.verify([KEY], [links.DOWNLOAD], signed_by_old, ID, NOW)
    assert (
        signing.verify(
            [KEY, OLD], "https://x/", str(LATER), signing.signature(OLD, "https://x/", LATER), NOW
        )
        is None
    )


@pytest.mark.parametrize(
    "terms",
    [
        links.UploadTerms(owner="a\nb"),
        links.UploadTerms(owner=""),
        links.UploadTerms(owner="x" * 257),
        links.UploadTerms(type="video"),
        links.UploadTerms(type="*/*"),
        links.UploadTerms(max_size=0),
    ],
)
def test_terms_that_cannot_be_signed(terms: links.UploadTerms) -> None:
    with pytest.raises(ValueError):
        links.upload_query(KEY, terms, LATER)


@pytest.mark.parametrize(
    ("header", "token"),
    [
        (None, None),
        ("Bearer abc.def-ghi_jkl~+/==", "abc.def-ghi_jkl~+/=="),
        ("bearer   tok", "tok"),
        ("BEARER tok ", "tok"),
    ],
)
def test_bearer_tokens(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


@pytest.mark.parametrize(
    "header", ["", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer a b", "Bearer a=b", "Token x"]
)
def test_malformed_authorization(header: str) -> None:
    with pytest.raises(BadAuthorization):
        bearer_token(header)


@pytest.mark.parametrize(
    ("qs", "logged"),
    [
        ("", ""),
        ("name=a.iso", "name=a.iso"),
        ("expires=1&sig=abc", "expires=1&sig=REDACTED"),
        ("access_token=eyJ.x.y&x=1", "access_token=REDACTED&x=1"),
        ("acc%65ss_token=eyJ", "acc%65ss_token=REDACTED"),  # what aiohttp would decode
        ("SIG=abc", "SIG=REDACTED"),
        ("url=https%3A%2F%2Fa&expires=2&sig=ff", "url=https%3A%2F%2Fa&expires=2&sig=REDACTED"),
    ],
)
def test_redaction(qs: str, logged: str) -> None:
    assert links.redact(qs) == logged


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.1", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("", False),
        ("10.0.0.1", False),
        ("files.example", False),
    ],
)
def test_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_protected_mode_rules() -> None:
    assert exposure_problem(Settings(host="127.0.0.1")) is None
    line = exposure_problem(Settings(host="0.0.0.0"))
    assert line is not None and "--auth" in line and "--insecure-no-auth" in line
    assert "\n" not in line
    assert exposure_problem(Settings(host="0.0.0.0", insecure_no_auth=True)) is None
    assert exposure_problem(Settings(host="::", auth="jwt", jwt_key=KEY)) is None


# -- fuzz ---------------------------------------------------------------------------------

_fields = st.dictionaries(
    st.sampled_from(["expires", "sig", "max_size", "owner", "type", "x"]),
    st.text(max_size=80),
    max_size=6,
)


@given(_fields, st.sampled_from([None, ID]))
def test_fuzzed_queries_never_pass_nor_crash(q: dict[str, str], upload_id: str | None) -> None:
    try:
        links.verify([KEY], links.KINDS, q, upload_id, NOW)
    except links.LinkRefused:
        return
    raise AssertionError(f"an unsigned query passed: {q}")


@given(st.sampled_from(["expires", "sig", "max_size", "owner", "type"]), st.text(max_size=40))
@example("expires", "²")  # digit to isdigit(), not to int(): it was a 500
def test_fuzzed_changes_to_a_real_link_never_pass(field: str, value: str) -> None:
    terms = links.UploadTerms(max_size=100, owner="alice", type="image/png")
    q = query(links.upload_query(KEY, terms, LATER))
    if q.get(field) == value or (field == "sig" and value.lower() == q["sig"]):
        return
    try:
        links.verify([KEY], [links.UPLOAD], {**q, field: value}, None, NOW)
    except links.LinkRefused:
        return
    raise AssertionError(f"{field}={value!r} passed")


@given(st.text(max_size=200))
def test_fuzzed_authorization_headers(header: str) -> None:
    try:
        token = bearer_token(header)
    except BadAuthorization:
        return
    assert token and header.strip().lower().startswith("bearer")
