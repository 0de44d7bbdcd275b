"""hypothesis against the guard itself: whatever Authorization header or signed query a
client sends, the answer is a 4xx with the JSON error, never a 500 and never a pass."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlencode

import jwt
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from hypothesis import given, settings
from hypothesis import strategies as st

from server.auth.guard import AUTHENTICATOR, Authenticator, Need, authenticate
from server.context import SETTINGS
from server.errors import ApiError
from server.protocol import links
from server.settings import Settings

KEY = "fuzz-jwt-key-0123456789abcdefghijklmnop"
SECRET = "fuzz-link-secret-0123456789abcdefghijkl"
ID = "F" * 22
NEED = Need(("read",), links=links.KINDS, query_token=True)
UPLOAD = Need(("upload",), links=(links.UPLOAD,))


def app() -> web.Application:
    s = Settings(auth="jwt", jwt_key=KEY, secret=(SECRET,))
    application = web.Application()
    application[SETTINGS] = s
    application[AUTHENTICATOR] = Authenticator(s)
    return application


APP = app()
VALID = jwt.encode({"sub": "a", "scope": "admin", "exp": int(time.time()) + 86400}, KEY)


def outcome(path: str, headers: dict[str, str], need: Need) -> int:
    request = make_mocked_request("GET", path, headers=headers, app=APP, match_info={"id": ID})
    try:
        asyncio.run(authenticate(request, need))
    except ApiError as exc:
        assert exc.code in {"unauthorized", "invalid_token", "invalid_request", "bad_signature"}
        return exc.status
    return 200


B64 = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=~+/")


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=300), B64.map(lambda t: "Bearer " + t)))
def test_fuzzed_authorization_header(header: str) -> None:
    assert outcome(f"/files/{ID}", {"Authorization": header}, NEED) in (400, 401)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 1), st.integers(0, 10_000), st.characters(codec="ascii"))
def test_a_valid_token_changed_anywhere_it_is_signed_never_passes(
    segment: int, where: int, char: str
) -> None:
    parts = VALID.split(".")
    target = parts[segment]
    i = where % len(target)
    if target[i] == char:
        return
    parts[segment] = target[:i] + char + target[i + 1 :]
    assert outcome(f"/files/{ID}", {"Authorization": "Bearer " + ".".join(parts)}, NEED) in (
        400,
        401,
    )
    assert outcome(f"/files/{ID}", {"Authorization": f"Bearer {VALID}"}, NEED) == 200


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["expires", "sig", "max_size", "owner", "type", "access_token", "x"]),
        st.text(max_size=70),
        min_size=1,
    )
)
def test_fuzzed_signed_queries(query: dict[str, str]) -> None:
    path = f"/files/{ID}?{urlencode(query)}"
    assert outcome(path, {}, NEED) in (400, 401, 403)
    assert outcome(f"/files/?{urlencode(query)}", {}, UPLOAD) in (400, 401, 403)
