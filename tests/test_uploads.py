"""One-shot uploads over HTTP: body forms, names, Location, the cap, and broken bodies."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from storage.ids import is_valid_id
from tests.conftest import Backend, ClientFactory, sha256

Client = TestClient  # type: ignore[type-arg]


async def upload_ok(resp: aiohttp.ClientResponse, body: bytes, name: str) -> dict[str, object]:
    assert resp.status == 201, await resp.text()
    doc = await resp.json()
    assert is_valid_id(doc["id"])
    url = f"http://{resp.url.host}:{resp.url.port}/files/{doc['id']}"
    assert resp.headers["Location"] == url
    assert doc["url"] == url
    assert doc["name"] == name
    assert doc["size"] == len(body)
    assert doc["sha256"] == sha256(body)
    return doc


async def fetch(client: Client, file_id: str) -> tuple[aiohttp.ClientResponse, bytes]:
    resp = await client.get(f"/files/{file_id}")
    return resp, await resp.read()


async def test_raw_post_with_name_query(client: Client) -> None:
    body = os.urandom(300_000)
    resp = await client.post("/files/?name=photo.jpg", data=body)
    doc = await upload_ok(resp, body, "photo.jpg")
    got, data = await fetch(client, str(doc["id"]))
    assert got.status == 200 and data == body
    assert got.headers["Content-Type"] == "image/jpeg"  # from the name
    assert got.headers["Content-Length"] == str(len(body))


async def test_post_without_trailing_slash_and_default_name(client: Client) -> None:
    resp = await client.post("/files", data=b"abc")
    await upload_ok(resp, b"abc", "upload")


async def test_form_encoded_body_is_stored_verbatim(client: Client) -> None:
    """curl --data sends x-www-form-urlencoded: never parsed, and not the file's type."""
    body = b"a=1&b=2&%zz"
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    resp = await client.post("/files/?name=q.txt", data=body, headers=headers)
    doc = await upload_ok(resp, body, "q.txt")
    got, data = await fetch(client, str(doc["id"]))
    assert data == body and got.headers["Content-Type"] == "text/plain"


async def test_declared_content_type_is_kept(client: Client) -> None:
    resp = await client.post(
        "/files/?name=x.bin", data=b"\x89PNG", headers={"Content-Type": "image/png"}
    )
    doc = await upload_ok(resp, b"\x89PNG", "x.bin")
    got, _ = await fetch(client, str(doc["id"]))
    assert got.headers["Content-Type"] == "image/png"


async def test_name_from_content_disposition(client: Client) -> None:
    headers = {"Content-Disposition": "attachment; filename*=UTF-8''%E2%82%AC%20rates.pdf"}
    resp = await client.post("/files/", data=b"pdf", headers=headers)
    await upload_ok(resp, b"pdf", "€ rates.pdf")


async def test_name_query_wins_and_is_sanitised(client: Client) -> None:
    headers = {"Content-Disposition": 'attachment; filename="ignored.txt"'}
    resp = await client.post("/files/?name=../../etc/passwd", data=b"x", headers=headers)
    await upload_ok(resp, b"x", "passwd")


async def test_put_takes_the_name_from_the_path(client: Client, backend_store: Backend) -> None:
    body = os.urandom(5000)
    resp = await client.put("/files/big%20file.iso", data=body)
    doc = await upload_ok(resp, body, "big file.iso")
    # the name is metadata only: nothing named after it exists on disk
    assert backend_store.names() == sorted([doc["id"], f"{doc['id']}.info"])


async def test_put_to_the_collection(client: Client) -> None:
    """`curl -T - URL/files/?name=x` (stdin) PUTs the collection itself."""
    resp = await client.put("/files/?name=piped.log", data=b"from stdin")
    await upload_ok(resp, b"from stdin", "piped.log")


async def test_chunked_body(client: Client) -> None:
    parts = [os.urandom(70_000) for _ in range(10)]

    async def gen() -> AsyncIterator[bytes]:
        for p in parts:
            yield p

    resp = await client.post("/files/?name=c.bin", data=gen())
    await upload_ok(resp, b"".join(parts), "c.bin")


async def test_multipart_single_file(client: Client) -> None:
    body = os.urandom(200_000)
    form = aiohttp.FormData()
    form.add_field("note", "a text field, skipped")
    form.add_field("file", body, filename="scan.png", content_type="image/png")
    resp = await client.post("/files/", data=form)
    doc = await upload_ok(resp, body, "scan.png")
    got, data = await fetch(client, str(doc["id"]))
    assert data == body and got.headers["Content-Type"] == "image/png"


async def test_multipart_several_files(client: Client) -> None:
    a, b = os.urandom(1000), os.urandom(2000)
    form = aiohttp.FormData()
    form.add_field("f1", a, filename="a.bin", content_type="application/octet-stream")
    form.add_field("f2", b, filename="b.bin", content_type="application/octet-stream")
    resp = await client.post("/files/", data=form)
    assert resp.status == 201
    doc = await resp.json()
    assert [(f["name"], f["size"], f["sha256"]) for f in doc["files"]] == [
        ("a.bin", 1000, sha256(a)),
        ("b.bin", 2000, sha256(b)),
    ]
    assert resp.headers["Location"] == doc["files"][0]["url"]
    for f, expected in zip(doc["files"], [a, b], strict=True):
        assert (await fetch(client, f["id"]))[1] == expected


async def test_multipart_without_a_file(client: Client, backend_store: Backend) -> None:
    form = aiohttp.FormData(default_to_multipart=True)
    form.add_field("only", "text")
    form.add_field("more", "text")
    resp = await client.post("/files/", data=form)
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "no_file"
    assert backend_store.names() == []


async def test_multipart_without_boundary(client: Client) -> None:
    resp = await client.post("/files/", data=b"x", headers={"Content-Type": "multipart/form-data"})
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "bad_multipart"


# -- the per-request cap ------------------------------------------------------------------


async def test_content_length_over_cap_is_refused_before_storing(
    make_client: ClientFactory, backend_store: Backend
) -> None:
    client = await make_client(max_request_size=1000)
    resp = await client.post("/files/", data=b"x" * 1001)
    assert resp.status == 413
    assert await resp.json() == {
        "error": {"code": "too_large", "message": "request body is larger than the 1000-byte limit"}
    }
    assert backend_store.names() == []
    ok = await client.post("/files/", data=b"x" * 1000)
    assert ok.status == 201


async def test_chunked_body_crossing_cap(
    make_client: ClientFactory, backend_store: Backend
) -> None:
    client = await make_client(max_request_size=100_000)

    async def gen() -> AsyncIterator[bytes]:
        for _ in range(50):
            yield b"y" * 10_000

    resp = await client.post("/files/", data=gen())
    assert resp.status == 413
    assert (await resp.json())["error"]["code"] == "too_large"
    assert backend_store.names() == []


async def test_multipart_crossing_cap(make_client: ClientFactory, backend_store: Backend) -> None:
    client = await make_client(max_request_size=100_000)

    async def gen() -> AsyncIterator[bytes]:
        yield b"--B\r\nContent-Disposition: form-data; name=f; filename=a\r\n\r\n"
        for _ in range(20):
            yield b"z" * 10_000
        yield b"\r\n--B--\r\n"

    headers = {"Content-Type": "multipart/form-data; boundary=B"}
    resp = await client.post("/files/", data=gen(), headers=headers)
    assert resp.status == 413
    assert backend_store.names() == []


def sha256_field(data: bytes) -> str:
    return f"sha-256=:{base64.b64encode(hashlib.sha256(data).digest()).decode()}:"


@pytest.mark.parametrize("size", [1000, 2 << 20])  # through aiohttp; moved from the socket
@pytest.mark.parametrize("field", ["Content-Digest", "Repr-Digest"])
async def test_a_digest_field_is_checked(
    client: Client, backend_store: Backend, size: int, field: str
) -> None:
    """RFC 9530: a one-shot body whose sha-256 is not its declared one is refused, and
    nothing is kept; one that matches is stored, and the 201 gives the digest back."""
    body = os.urandom(size)
    wrong = await client.put("/files/a.bin", data=body, headers={field: sha256_field(b"other")})
    assert wrong.status == 400
    assert (await wrong.json())["error"]["code"] == "digest_mismatch"
    await wait_until_empty(backend_store)
    right = await client.put("/files/a.bin", data=body, headers={field: sha256_field(body)})
    assert right.status == 201
    assert right.headers["Repr-Digest"] == sha256_field(body)
    assert (await right.json())["sha256"] == sha256(body)


async def test_digest_fields_that_disagree_are_refused_before_the_body(
    client: Client, backend_store: Backend
) -> None:
    both = {"Content-Digest": sha256_field(b"a"), "Repr-Digest": sha256_field(b"b")}
    resp = await client.put("/files/a.bin", data=b"a", headers=both)
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "digest_mismatch"
    assert backend_store.names() == []
    agreeing = {"Content-Digest": sha256_field(b"a"), "Repr-Digest": sha256_field(b"a")}
    assert (await client.put("/files/a.bin", data=b"a", headers=agreeing)).status == 201


async def test_other_digest_algorithms_are_ignored(client: Client) -> None:
    """Only sha-256 is checked (the hash kept anyway); RFC 9530 lets the rest be ignored."""
    sha512 = f"sha-512=:{base64.b64encode(hashlib.sha512(b'other').digest()).decode()}:"
    resp = await client.put("/files/a.bin", data=b"body", headers={"Content-Digest": sha512})
    assert resp.status == 201 and (await resp.json())["sha256"] == sha256(b"body")


def md5_field(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


@pytest.mark.parametrize("size", [1000, 2 << 20])  # through aiohttp; large enough to move
async def test_a_content_md5_is_checked(client: Client, backend_store: Backend, size: int) -> None:
    """S3's PutObject check: a body whose MD5 is not its Content-MD5 is refused and nothing
    is kept; a matching one is stored whole."""
    body = os.urandom(size)
    wrong = await client.put("/files/a.bin", data=body, headers={"Content-MD5": md5_field(b"x")})
    assert wrong.status == 400
    error = (await wrong.json())["error"]
    assert error["code"] == "digest_mismatch"
    assert hashlib.md5(body).hexdigest() in error["message"]
    await wait_until_empty(backend_store)
    right = await client.put("/files/a.bin", data=body, headers={"Content-MD5": md5_field(body)})
    doc = await upload_ok(right, body, "a.bin")
    got, data = await fetch(client, str(doc["id"]))
    assert got.status == 200 and sha256(data) == sha256(body)


@pytest.mark.parametrize("value", ["", "0" * 32, "AAAA", "not base64!"])
async def test_a_malformed_content_md5_is_refused_before_the_body(
    client: Client, backend_store: Backend, value: str
) -> None:
    resp = await client.post("/files/", data=b"abc", headers={"Content-MD5": value})
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "bad_digest"
    assert backend_store.names() == []


async def test_content_md5_and_a_digest_field_are_both_checked(
    client: Client, backend_store: Backend
) -> None:
    body = b"both digests"
    right_md5, right_sha = md5_field(body), sha256_field(body)
    for md5, sha in [(right_md5, sha256_field(b"x")), (md5_field(b"x"), right_sha)]:
        headers = {"Content-MD5": md5, "Content-Digest": sha}
        resp = await client.put("/files/b.txt", data=body, headers=headers)
        assert resp.status == 400 and (await resp.json())["error"]["code"] == "digest_mismatch"
        await wait_until_empty(backend_store)
    headers = {"Content-MD5": right_md5, "Content-Digest": right_sha}
    await upload_ok(await client.put("/files/b.txt", data=body, headers=headers), body, "b.txt")


async def test_zero_means_unlimited(make_client: ClientFactory) -> None:
    client = await make_client(max_request_size=0)
    body = os.urandom(2_000_000)
    resp = await client.post("/files/", data=body)
    await upload_ok(resp, body, "upload")


async def raw_exchange(client: Client, request: bytes, *, close_after: bool) -> bytes:
    """Send raw bytes; then hang up, or half-close and read until the server closes."""
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(request)
    await writer.drain()
    if close_after:
        writer.close()
        return b""
    writer.write_eof()
    try:
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()


async def wait_until_empty(backend_store: Backend) -> None:
    for _ in range(100):
        if backend_store.names() == []:
            return
        await asyncio.sleep(0.05)
    assert backend_store.names() == []


async def test_expect_continue_over_cap_gets_413_and_no_100(make_client: ClientFactory) -> None:
    client = await make_client(max_request_size=1000)
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(
        b"PUT /files/a HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n"
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    writer.close()
    assert head.startswith(b"HTTP/1.1 413 ")  # straight away: no 100 Continue first
    assert b"Connection: close" in head


async def test_expect_continue_under_cap_gets_100(client: Client) -> None:
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(
        b"PUT /files/a HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"
    )
    assert (
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5) == b"HTTP/1.1 100 Continue\r\n\r\n"
    )
    writer.write(b"abc")
    status = await asyncio.wait_for(reader.readline(), 5)
    writer.close()
    assert status == b"HTTP/1.1 201 Created\r\n"


async def send_on_100(client: Client, head: bytes, body: bytes) -> tuple[bytes, bytes]:
    """Send `head`, wait for the interim answer, send `body` on a 100; the first response
    head and the final one (the same when there was no 100)."""
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    try:
        writer.write(head)
        first = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        if not first.startswith(b"HTTP/1.1 100 "):
            return first, first
        writer.write(body)
        return first, await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    finally:
        writer.close()


def expecting(request_line: str, length: int, *fields: str) -> bytes:
    lines = [request_line, "Host: t", f"Content-Length: {length}", "Expect: 100-continue", *fields]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def test_expect_continue_on_a_form_post(client: Client) -> None:
    body = (
        b'--B\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\n'
        b"hello\r\n--B--\r\n"
    )
    head = expecting(
        "POST /files/ HTTP/1.1", len(body), "Content-Type: multipart/form-data; boundary=B"
    )
    first, final = await send_on_100(client, head, body)
    assert first == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert final.startswith(b"HTTP/1.1 201 ")


async def test_expect_continue_on_a_tus_creation_with_upload(client: Client) -> None:
    fields = (
        "Tus-Resumable: 1.0.0",
        "Upload-Length: 5",
        "Content-Type: application/offset+octet-stream",
    )
    first, final = await send_on_100(
        client, expecting("POST /files/ HTTP/1.1", 5, *fields), b"12345"
    )
    assert first == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert final.startswith(b"HTTP/1.1 201 ") and b"Upload-Offset: 5\r\n" in final


async def test_a_creation_over_the_upload_limit_gets_no_100(make_client: ClientFactory) -> None:
    """The upload limit is the handler's to apply, past the expect handler's request cap:
    the 413 is still the first answer, and the connection closes (no body is coming)."""
    client = await make_client(max_upload_size=10)
    fields = (
        "Tus-Resumable: 1.0.0",
        "Upload-Length: 50",
        "Content-Type: application/offset+octet-stream",
    )
    first, _ = await send_on_100(client, expecting("POST /files/ HTTP/1.1", 5, *fields), b"12345")
    assert first.startswith(b"HTTP/1.1 413 ") and b"Connection: close" in first


async def test_short_body_leaves_nothing(client: Client, backend_store: Backend) -> None:
    request = b"POST /files/ HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n" + b"a" * 60_000
    await raw_exchange(client, request, close_after=False)
    await wait_until_empty(backend_store)


async def test_disconnect_mid_body_leaves_nothing(client: Client, backend_store: Backend) -> None:
    request = (
        b"PUT /files/x HTTP/1.1\r\nHost: t\r\nContent-Length: 10000000\r\n\r\n" + b"b" * 3_000_000
    )
    await raw_exchange(client, request, close_after=True)
    await wait_until_empty(backend_store)


async def test_broken_chunked_encoding_leaves_nothing(
    client: Client, backend_store: Backend
) -> None:
    request = (
        b"POST /files/ HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"10\r\n0123456789abcdef\r\nZZ\r\n"
    )
    reply = await raw_exchange(client, request, close_after=False)
    # aiohttp's parser fails the connection itself: a 400, or a plain close if the
    # response could no longer be sent. Either way nothing may be stored.
    assert reply == b"" or reply.startswith(b"HTTP/1.1 400 ")
    await wait_until_empty(backend_store)


# -- Location ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "prefix"),
    [
        (
            {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "up.example"},
            "https://up.example/files/",
        ),
        (
            {"Forwarded": 'for=1.2.3.4;proto=https;host="fw.example:8443"'},
            "https://fw.example:8443/files/",
        ),
        ({"Host": "direct.example:81"}, "http://direct.example:81/files/"),
    ],
)
async def test_location_behind_proxies(
    client: Client, headers: dict[str, str], prefix: str
) -> None:
    resp = await client.post("/files/", data=b"x", headers=headers)
    assert resp.status == 201
    assert resp.headers["Location"].startswith(prefix)
    assert (await resp.json())["url"] == resp.headers["Location"]


async def test_public_url_wins(make_client: ClientFactory) -> None:
    client = await make_client(public_url="https://cdn.example/base")
    resp = await client.post("/files/", data=b"x", headers={"X-Forwarded-Host": "other.example"})
    assert resp.headers["Location"].startswith("https://cdn.example/base/files/")


# -- errors are JSON -----------------------------------------------------------------------


async def test_unknown_route_and_wrong_method(client: Client) -> None:
    resp = await client.get("/nope")
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "not_found"
    resp = await client.patch("/files/")
    assert resp.status == 405
    assert set(resp.headers["Allow"].split(",")) == {"GET", "HEAD", "OPTIONS", "POST", "PUT"}
    assert json.loads(await resp.text())["error"]["code"] == "method_not_allowed"
