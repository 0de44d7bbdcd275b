"""Nothing a client sends to the resumable protocols or the API may produce a 500.

test_fuzz_http.py covers downloads and names. This covers what a tus client, an IETF-draft
client and a browser talking to the JSON routes send: hypothesis-made headers on creation
and on a real upload's PATCH, HEAD and DELETE, and made-up JSON, queries and path segments
on every API route, over both backends. Each answer under 500 that is an error must carry
the JSON error body. An earlier version found `PUT /s3/local/{id}/0` answering 500.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ClientFactory

Client = TestClient  # type: ignore[type-arg]
SECRET = "fuzz-link-secret-0123456789abcdefghijkl"

# Header values must be latin-1 without CR/LF to be sendable at all.
header_text = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
    max_size=60,
)
numberish = st.from_regex(r"[-+ ]?[0-9]{0,25}(\.[0-9]*)?([eE][0-9]{0,3})?", fullmatch=True)
structured = st.from_regex(r'[?*:;=,() "a-z0-9+/.-]{0,40}', fullmatch=True)
near_valid = st.sampled_from(
    [
        *("?0", "?1", "0", "1", "3", "6", "7", "8", "1.0.0", "partial"),
        "sha256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:",
        "sha1 Kq5sNclPz7QV2+lfQIuc6R7oRu0=",
        "final;/files/a /files/b",
        "filename dmFsdWU=,flag",
        "application/offset+octet-stream",
        "application/partial-upload",
        "bytes 0-2/3",
    ]
)
value = st.one_of(st.none(), header_text, numberish, structured, near_valid)
TUS = (
    *("Upload-Length", "Upload-Offset", "Upload-Metadata", "Upload-Concat"),
    *("Upload-Defer-Length", "Upload-Checksum", "Tus-Resumable", "Content-Type"),
    "X-HTTP-Method-Override",
)
DRAFT = (
    *("Upload-Draft-Interop-Version", "Upload-Complete", "Upload-Incomplete"),
    *("Upload-Offset", "Upload-Length", "Upload-Limit", "Repr-Digest", "Content-Digest"),
    *("Content-Type", "Content-Range"),
)
fuzz = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def headers_of(names: tuple[str, ...]) -> st.SearchStrategy[dict[str, str]]:
    """Each of `names` absent or given a made-up value."""
    return st.tuples(*(value for _ in names)).map(
        lambda values: {n: v for n, v in zip(names, values, strict=True) if v is not None}
    )


def file_path(location: str) -> str:
    return "/files/" + location.rsplit("/", 1)[1]


async def answered_cleanly(resp: ClientResponse, what: object) -> None:
    body = await resp.read()
    assert resp.status < 500, (what, resp.status, body)
    if resp.status >= 400 and resp.method != "HEAD":
        assert json.loads(body)["error"]["code"], (what, body)


@fuzz
@given(
    create=headers_of(TUS),
    then=headers_of(TUS),
    body=st.binary(max_size=40),
    method=st.sampled_from(["POST", "PATCH", "HEAD", "DELETE", "GET", "PUT", "OPTIONS"]),
)
async def test_tus_headers_never_500(
    make_client: ClientFactory,
    create: dict[str, str],
    then: dict[str, str],
    body: bytes,
    method: str,
) -> None:
    client = await make_client()
    try:
        await answered_cleanly(await client.post("/files/", data=body, headers=create), create)
        made = await client.post(
            "/files/", headers={"Tus-Resumable": "1.0.0", "Upload-Length": "10"}
        )
        assert made.status == 201
        sent = body if method in ("PATCH", "PUT", "POST") else None
        resp = await client.request(
            method, file_path(made.headers["Location"]), data=sent, headers=then
        )
        await answered_cleanly(resp, (method, then))
    finally:
        await client.close()


@fuzz
@given(
    create=headers_of(DRAFT),
    then=headers_of(DRAFT),
    body=st.binary(max_size=40),
    method=st.sampled_from(["POST", "PUT", "PATCH", "HEAD", "DELETE"]),
    version=st.sampled_from(["3", "5", "6", "7", "8"]),
)
async def test_draft_headers_never_500(
    make_client: ClientFactory,
    create: dict[str, str],
    then: dict[str, str],
    body: bytes,
    method: str,
    version: str,
) -> None:
    client = await make_client()
    try:
        await answered_cleanly(await client.post("/files/", data=body, headers=create), create)
        incomplete = {"Upload-Complete": "?0", "Upload-Incomplete": "?1"}
        made = await client.post(
            "/files/", data=b"abc", headers={"Upload-Draft-Interop-Version": version, **incomplete}
        )
        await answered_cleanly(made, version)
        if "Location" not in made.headers:
            return  # a version spigot does not speak: a one-shot file, or a 4xx
        then.setdefault("Upload-Draft-Interop-Version", version)
        sent = body if method in ("PATCH", "PUT", "POST") else None
        resp = await client.request(
            method, file_path(made.headers["Location"]), data=sent, headers=then
        )
        await answered_cleanly(resp, (method, then))
    finally:
        await client.close()


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.text(max_size=20),
    st.sampled_from(["download", "upload", "post", "/files/x", "http://127.0.0.1/", "1e400"]),
)
KEYS = st.sampled_from(
    [
        *("parts", "PartNumber", "ETag", "filename", "type", "metadata", "url", "path"),
        *("kind", "expires", "expires_in", "id", "size", "name", "method", "owner"),
    ]
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(KEYS | st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=12,
)
bodies = st.one_of(json_values.map(lambda v: json.dumps(v).encode()), st.binary(max_size=30))
QUERY_KEYS = st.sampled_from(
    [
        *("url", "filename", "type", "key", "partNumbers", "owner", "name", "expires"),
        *("sig", "token", "metadata[name]", "kind", "x", "limit", "after"),
    ]
)
ROUTES = (
    *(("POST", "/sign"), ("POST", "/imports"), ("GET", "/imports/{s}")),
    *(("GET", "/s3/params"), ("POST", "/s3/multipart"), ("GET", "/s3/multipart/{u}")),
    *(("GET", "/s3/multipart/{u}/batch"), ("GET", "/s3/multipart/{u}/{s}")),
    *(("POST", "/s3/multipart/{u}/complete"), ("DELETE", "/s3/multipart/{u}")),
    *(("PUT", "/s3/local/{u}/{s}"), ("GET", "/files/"), ("GET", "/files/{s}")),
    *(("DELETE", "/files/{s}"), ("GET", "/files/{u}/events"), ("GET", "/progress/{s}/events")),
    *(("GET", "/proxy"), ("GET", "/api/me"), ("GET", "/api/config"), ("GET", "/static/{s}")),
    *(("POST", "/url/meta"), ("POST", "/url/get"), ("GET", "/api/{s}")),  # Companion's
)


@settings(fuzz, max_examples=150)
@given(
    route=st.sampled_from(ROUTES),
    body=bodies,
    query=st.dictionaries(QUERY_KEYS, st.text(max_size=30), max_size=4),
    segment=st.text(max_size=30),
    real_upload=st.booleans(),
)
async def test_api_routes_never_500(
    make_client: ClientFactory,
    route: tuple[str, str],
    body: bytes,
    query: dict[str, str],
    segment: str,
    real_upload: bool,
) -> None:
    client = await make_client(secret=(SECRET,))  # local disk's direct uploads need one
    try:
        upload = segment
        if real_upload:  # {u} names a direct upload that exists, so the checks go deeper
            made = await client.post("/s3/multipart", json={"filename": "a.bin", "metadata": {}})
            if made.status == 200:
                upload = (await made.json())["uploadId"]
        method, template = route
        path = template.replace("{u}", quote(upload, safe="") or "u")
        path = path.replace("{s}", quote(segment, safe="") or "1")
        sent: Any = body if method in ("POST", "PUT") else None
        resp = await client.request(method, path, params=query, data=sent)
        if resp.content_type == "text/event-stream":
            assert resp.status == 200  # a stream that waits for events: its head is the answer
            return
        await answered_cleanly(resp, (method, path, query, body))
    finally:
        await client.close()
