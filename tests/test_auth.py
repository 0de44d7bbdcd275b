"""Access control over HTTP, in-process, on both backends: tokens (HS256, RS256, ES256,
EdDSA, JWKS), the ownership matrix, the auth hook, signed download and upload links."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import time
from base64 import urlsafe_b64encode
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from server.auth import tokens
from server.protocol import links
from server.protocol.tus import encode_metadata
from tests.conftest import Backend, ClientFactory, sha256
from tests.test_events_hooks import read_events
from tests.test_imports import Origin, origin  # noqa: F401 - a fixture

Client = TestClient  # type: ignore[type-arg]
KEY = "an-hs256-key-for-tests-0123456789abcdef"
SECRET = "a-link-signing-secret-0123456789abcdef"
OLD_SECRET = "the-previous-link-secret-0123456789abc"
REALM = 'Bearer realm="spigot"'
TUS = {"Tus-Resumable": "1.0.0"}


def token(
    sub: str = "alice",
    scope: str = "upload read delete sign",
    key: Any = KEY,
    algorithm: str = "HS256",
    **claims: Any,
) -> str:
    body = {"sub": sub, "scope": scope, "exp": int(time.time()) + 600, **claims}
    return jwt.encode({k: v for k, v in body.items() if v is not None}, key, algorithm=algorithm)


def bearer(tok: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tok}"}


def invalid(why: str) -> str:
    return f'{REALM}, error="invalid_token", error_description="{why}"'


async def jwt_client(make_client: ClientFactory, **overrides: Any) -> Client:
    return await make_client(auth="jwt", jwt_key=KEY, secret=(SECRET,), **overrides)


async def put(client: Client, data: bytes, headers: dict[str, str], name: str = "f.bin") -> Any:
    resp = await client.put(f"/files/{name}", data=data, headers=headers)
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def tus_create(client: Client, headers: dict[str, str], length: int = 10) -> str:
    resp = await client.post("/files/", headers={**TUS, **headers, "Upload-Length": str(length)})
    assert resp.status == 201, await resp.text()
    return resp.headers["Location"]


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


async def error(resp: Any) -> str:
    code: str = (await resp.json())["error"]["code"]
    return code


# -- tokens -------------------------------------------------------------------------------


async def test_hs256_token_cases(make_client: ClientFactory) -> None:
    client = await jwt_client(make_client, jwt_audience="spigot", jwt_issuer="https://idp")
    ok = {"aud": "spigot", "iss": "https://idp"}
    resp = await client.get("/files/", headers=bearer(token(**ok)))
    assert resp.status == 200 and await resp.json() == []

    resp = await client.get("/files/")
    assert resp.status == 401 and resp.headers["WWW-Authenticate"] == REALM
    assert await error(resp) == "unauthorized"
    cases = [
        (token(exp=int(time.time()) - 3600, **ok), "the token has expired"),
        (token(nbf=int(time.time()) + 3600, **ok), "the token is not valid yet"),
        (token(aud="other", iss="https://idp"), "the token is for another audience"),
        (token(aud="spigot", iss="https://evil"), "the token is from another issuer"),
        (token(exp=None, **ok), "the token lacks a required claim (exp, sub)"),
        (
            token(key="another-key-that-is-long-enough-0123456", **ok),
            "the token's signature does not match",
        ),
        (
            jwt.encode(
                {"sub": "alice", "exp": int(time.time()) + 60, **ok}, None, algorithm="none"
            ),
            "the token's algorithm is not accepted",
        ),
        ("not.a.jwt", "the token is malformed"),
    ]
    for tok, why in cases:
        resp = await client.get("/files/", headers=bearer(tok))
        assert resp.status == 401, why
        assert resp.headers["WWW-Authenticate"] == invalid(why)
        assert await resp.json() == {"error": {"code": "invalid_token", "message": why}}

    resp = await client.delete("/files/" + "A" * 22, headers=bearer(token(scope="read", **ok)))
    assert resp.status == 403 and await error(resp) == "insufficient_scope"
    assert (
        resp.headers["WWW-Authenticate"] == f'{REALM}, error="insufficient_scope", scope="delete"'
    )

    for header in ("Basic dXNlcjpwYXNz", "Bearer", "Bearer two words"):
        resp = await client.get("/files/", headers={"Authorization": header})
        assert resp.status == 400 and await error(resp) == "invalid_request"
        assert resp.headers["WWW-Authenticate"].startswith(f'{REALM}, error="invalid_request"')


def b64(raw: bytes) -> str:
    return urlsafe_b64encode(raw).rstrip(b"=").decode()


def pem(private: Any, tmp_path: Path, name: str) -> tuple[str, bytes]:
    """The public key's PEM file, and its bytes."""
    path = tmp_path / f"{name}.pem"
    public: bytes = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    path.write_bytes(public)
    return str(path), public


@pytest.mark.parametrize(
    ("make_key", "algorithm"),
    [
        (lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256"),
        (lambda: ec.generate_private_key(ec.SECP256R1()), "ES256"),
        (ed25519.Ed25519PrivateKey.generate, "EdDSA"),
    ],
)
async def test_public_key_tokens(
    make_client: ClientFactory, tmp_path: Path, make_key: Any, algorithm: str
) -> None:
    private = make_key()
    key_file, public = pem(private, tmp_path, algorithm)
    client = await make_client(auth="jwt", jwt_public_key=key_file)
    good = token(key=private, algorithm=algorithm)
    assert (await client.get("/files/", headers=bearer(good))).status == 200
    # HS256 "signed" with the public key as the secret: the classic key confusion.
    claims = {"sub": "admin", "scope": "admin", "exp": int(time.time()) + 60}
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    signing_input = f"{head}.{b64(json.dumps(claims).encode())}"
    mac = hmac.new(public, signing_input.encode(), hashlib.sha256).digest()
    confused = f"{signing_input}.{b64(mac)}"
    resp = await client.get("/files/", headers=bearer(confused))
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"] == invalid("the token's algorithm is not accepted")


class Jwks:
    """A JWKS endpoint on loopback whose key set the test can rotate."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.fetches = 0

    async def serve(self, request: web.Request) -> web.Response:
        self.fetches += 1
        return web.json_response({"keys": self.keys})


def jwk_of(private: Any, kid: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
    return {**data, "kid": kid, "use": "sig", "alg": "RS256"}


@contextlib.asynccontextmanager
async def on_loopback(method: str, path: str, handler: Any) -> AsyncIterator[str]:
    """A one-route HTTP server on 127.0.0.1 for the length of the block; yields its URL."""
    app = web.Application()
    app.router.add_route(method, path, handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url(path))
    finally:
        await server.close()


@pytest.fixture
async def jwks() -> AsyncIterator[tuple[Jwks, str]]:
    endpoint = Jwks()
    async with on_loopback("GET", "/.well-known/jwks.json", endpoint.serve) as url:
        yield endpoint, url


BACKENDS = ("local", "s3")


async def test_jwks_with_rotation(
    make_client: ClientFactory, jwks: tuple[Jwks, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tokens, "JWKS_COOLDOWN", 0.0)
    endpoint, url = jwks
    first = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    second = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    endpoint.keys = [jwk_of(first, "k1")]
    client = await make_client(auth="jwt", jwt_jwks_url=url)

    def signed(private: Any, kid: str) -> str:
        body = {"sub": "alice", "scope": "read", "exp": int(time.time()) + 60}
        return jwt.encode(body, private, algorithm="RS256", headers={"kid": kid})

    assert (await client.get("/files/", headers=bearer(signed(first, "k1")))).status == 200
    assert (await client.get("/files/", headers=bearer(signed(first, "k1")))).status == 200
    assert endpoint.fetches == 1  # cached
    endpoint.keys = [jwk_of(second, "k2")]  # the IdP rotates
    assert (await client.get("/files/", headers=bearer(signed(second, "k2")))).status == 200
    assert endpoint.fetches == 2
    resp = await client.get("/files/", headers=bearer(signed(first, "k3")))
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"] == invalid("the token's key is not in the JWKS")


# -- ownership ----------------------------------------------------------------------------


async def test_ownership_matrix(make_client: ClientFactory, backend_store: Backend) -> None:
    client = await jwt_client(make_client)
    alice = bearer(token("alice"))
    bob = bearer(token("bob"))
    admin = bearer(token("root", scope="admin"))
    mine = await put(client, b"alice's bytes", alice, "a.txt")
    his = await put(client, b"bob's bytes", bob, "b.txt")
    her_tus = await tus_create(client, alice)
    his_tus = await tus_create(client, bob)

    listed = await (await client.get("/files/", headers=alice)).json()
    assert [f["id"] for f in listed] == [mine["id"]]
    everyone = await (await client.get("/files/", headers=admin)).json()
    assert sorted(f["id"] for f in everyone) == sorted([mine["id"], his["id"]])
    only_bob = await (await client.get("/files/?owner=bob", headers=admin)).json()
    assert [f["id"] for f in only_bob] == [his["id"]]
    ignored = await (await client.get("/files/?owner=bob", headers=alice)).json()
    assert [f["id"] for f in ignored] == [mine["id"]]  # ?owner= is admin's only
    paged = await client.get("/files/?owner=bob&limit=1", headers=admin)
    assert [f["id"] for f in await paged.json()] == [his["id"]]
    assert "Link" not in paged.headers  # bob has one file: a page of one is the last
    mine_paged = await (await client.get("/files/?limit=1000", headers=alice)).json()
    assert [f["id"] for f in mine_paged] == [mine["id"]]
    her_newest = await client.get("/files/?order=newest&limit=1", headers=alice)
    assert [f["id"] for f in await her_newest.json()] == [mine["id"]]
    assert her_newest.headers["X-Total-Count"] == "1"  # what she may see, not all there is
    all_newest = await client.get("/files/?order=newest&limit=1", headers=admin)
    assert [f["id"] for f in await all_newest.json()] == [his["id"]]  # his came later
    assert all_newest.headers["X-Total-Count"] == "2" and "before=" in all_newest.headers["Link"]
    bob_newest = await client.get("/files/?order=newest&owner=bob", headers=admin)
    assert [f["id"] for f in await bob_newest.json()] == [his["id"]]
    assert bob_newest.headers["X-Total-Count"] == "1"

    unknown = "/files/" + "Z" * 22
    for who, own, other in [(alice, mine, his), (bob, his, mine)]:
        resp = await client.get(f"/files/{own['id']}", headers=who)
        assert resp.status == 200 and await resp.read() in (b"alice's bytes", b"bob's bytes")
        for path in (f"/files/{other['id']}", unknown):
            for method in ("GET", "HEAD"):
                resp = await client.request(method, path, headers=who)
                assert resp.status == 404, (method, path)
            resp = await client.get(f"{path}/events", headers=who)
            assert resp.status == 404 and await error(resp) == "not_found"
    for who, own, other in [(alice, her_tus, his_tus), (bob, his_tus, her_tus)]:
        assert (await client.head(path_of(own), headers={**TUS, **who})).status == 200
        patch = {
            **TUS,
            **who,
            "Upload-Offset": "0",
            "Content-Type": "application/offset+octet-stream",
        }
        resp = await client.head(path_of(other), headers={**TUS, **who})
        assert resp.status == 404
        resp = await client.patch(path_of(other), data=b"0123456789", headers=patch)
        assert resp.status == 404 and await error(resp) == "not_found"
        resp = await client.delete(path_of(other), headers={**TUS, **who})
        assert resp.status == 404
        resp = await client.patch(path_of(own), data=b"0123456789", headers=patch)
        assert resp.status == 204
    resp = await client.delete(f"/files/{his['id']}", headers=alice)
    assert resp.status == 404
    assert (await client.delete(f"/files/{his['id']}", headers=admin)).status == 204
    assert (await client.delete(f"/files/{mine['id']}", headers=alice)).status == 204

    # The owner is in the stored info, on both backends.
    store = backend_store.new_store()
    await store.start()
    try:
        info = (await store.open(path_of(her_tus).rsplit("/", 1)[-1])).info
        assert info.owner == "alice" and info.is_complete
    finally:
        await store.close()


async def test_owners_of_concatenations_and_imports(
    make_client: ClientFactory,
    origin: Origin,  # noqa: F811
) -> None:
    client = await jwt_client(make_client, insecure_proxy_allow_private=True)
    alice = bearer(token("alice", scope="upload read import"))
    bob = bearer(token("bob", scope="upload read import"))
    partial = {**TUS, "Upload-Concat": "partial", "Upload-Length": "3"}
    resp = await client.post(
        "/files/",
        data=b"abc",
        headers={**partial, **alice, "Content-Type": "application/offset+octet-stream"},
    )
    assert resp.status == 201
    part = resp.headers["Location"]
    final = {**TUS, "Upload-Concat": f"final;{path_of(part)}"}
    resp = await client.post("/files/", headers={**final, **bob})
    assert resp.status == 400 and await error(resp) == "bad_partial"  # not his to use
    resp = await client.post("/files/", headers={**final, **alice})
    assert resp.status == 201
    files = await (await client.get("/files/", headers=alice)).json()
    assert [f["size"] for f in files] == [3]

    resp = await client.post("/imports", json={"url": origin.url()}, headers=alice)
    assert resp.status == 202
    job = await resp.json()
    assert (await client.get(f"/imports/{job['id']}", headers=bob)).status == 404
    events = await client.get(f"{job['events']}?access_token={token('alice', scope='import')}")
    done = await read_events(events, {"complete", "error"})
    assert done[-1]["event"] == "complete"
    imported = done[-1]["data"]["file"]["url"]
    assert (await client.get(path_of(imported), headers=bob)).status == 404
    resp = await client.get(path_of(imported), headers=alice)
    assert resp.status == 200 and len(await resp.read()) == len(origin_body())


def origin_body() -> bytes:
    from tests.test_imports import BODY

    return BODY


async def test_events_take_the_token_in_the_query(make_client: ClientFactory) -> None:
    client = await jwt_client(make_client)
    alice = token("alice")
    upload = await put(client, b"x" * 100, bearer(alice))
    path = f"/files/{upload['id']}/events"
    assert (await client.get(path)).status == 401
    assert (await client.get(f"{path}?access_token={token('bob')}")).status == 404
    resp = await client.get(f"{path}?access_token={alice}")
    assert resp.status == 200
    events = await read_events(resp, {"complete"})
    assert events[-1]["data"]["sha256"] == sha256(b"x" * 100)
    # A token in the query counts only where EventSource needs it.
    assert (await client.get(f"/files/?access_token={alice}")).status == 401


async def test_token_upload_cap(make_client: ClientFactory, backend_store: Backend) -> None:
    client = await jwt_client(make_client)
    small = bearer(token(max_upload_size=1000))
    assert (await client.put("/files/a", data=b"x" * 1000, headers=small)).status == 201
    resp = await client.put("/files/b", data=b"x" * 1001, headers=small)
    assert resp.status == 413
    resp = await client.post("/files/", headers={**TUS, **small, "Upload-Length": "1001"})
    assert resp.status == 413
    # deferred length: the cap holds across PATCHes, as it is kept with the upload
    resp = await client.post("/files/", headers={**TUS, **small, "Upload-Defer-Length": "1"})
    where = path_of(resp.headers["Location"])
    patch = {**TUS, **small, "Content-Type": "application/offset+octet-stream"}
    resp = await client.patch(where, data=b"y" * 900, headers={**patch, "Upload-Offset": "0"})
    assert resp.status == 204
    resp = await client.patch(where, data=b"y" * 200, headers={**patch, "Upload-Offset": "900"})
    assert resp.status == 413
    head = await client.head(where, headers={**TUS, **small})
    assert int(head.headers["Upload-Offset"]) <= 1000


# -- signed links -------------------------------------------------------------------------


async def test_download_links(make_client: ClientFactory) -> None:
    client = await jwt_client(make_client)
    alice = bearer(token("alice"))
    data = bytes(range(256)) * 40
    upload = await put(client, data, alice, "clip.bin")
    resp = await client.post(
        "/sign", json={"file": upload["id"], "expires_in": "1h"}, headers=alice
    )
    assert resp.status == 200
    link = path_of((await resp.json())["url"])
    assert (await client.get(f"/files/{upload['id']}")).status == 401
    resp = await client.get(link, headers={"Range": "bytes=10-19"})
    assert resp.status == 206 and await resp.read() == data[10:20]
    etag = resp.headers["ETag"]
    assert (await client.get(link, headers={"If-None-Match": etag})).status == 304
    resp = await client.get(link + "&download=1")
    assert resp.headers["Content-Disposition"].startswith("attachment")
    assert sha256(await resp.read()) == upload["sha256"]
    # A download link reads; it neither deletes nor resumes.
    assert (await client.delete(link)).status == 401
    resp = await client.head(link, headers=TUS)
    assert resp.status == 403  # (a HEAD: no body to read the code from)

    bob = bearer(token("bob"))
    resp = await client.post("/sign", json={"file": upload["id"]}, headers=bob)
    assert resp.status == 404
    resp = await client.post(
        "/sign", json={"file": upload["id"]}, headers=bearer(token(scope="read"))
    )
    assert resp.status == 403 and await error(resp) == "insufficient_scope"


async def test_link_expiry_tampering_and_rotation(make_client: ClientFactory) -> None:
    first = await make_client(auth="jwt", jwt_key=KEY, secret=(OLD_SECRET,))
    upload = await put(first, b"rotate me", bearer(token()))
    file_id = upload["id"]
    now = int(time.time())
    old_link = f"/files/{file_id}?" + links.file_query(
        OLD_SECRET, links.DOWNLOAD, file_id, now + 600
    )
    assert (await first.get(old_link)).status == 200
    # The operator puts a new key in front: old links still work, new ones use the new key.
    rotated = await make_client(auth="jwt", jwt_key=KEY, secret=(SECRET, OLD_SECRET))
    assert (await rotated.get(old_link)).status == 200
    resp = await rotated.post("/sign", json={"file": file_id}, headers=bearer(token()))
    new_link = path_of((await resp.json())["url"])
    query = dict(parse_qsl(urlsplit(new_link).query))
    assert links.verify([SECRET], [links.DOWNLOAD], query, file_id, time.time())
    dropped = await make_client(auth="jwt", jwt_key=KEY, secret=(SECRET,))
    assert (await dropped.get(new_link)).status == 200
    resp = await dropped.get(old_link)
    assert resp.status == 403
    assert (await resp.json())["error"]["message"] == "the link's signature does not match"

    expired = f"/files/{file_id}?" + links.file_query(SECRET, links.DOWNLOAD, file_id, now - 1)
    resp = await dropped.get(expired)
    assert resp.status == 403 and (await resp.json())["error"]["message"] == "the link has expired"
    for bad in (
        new_link.replace("expires=", "expires=1"),
        new_link[:-1] + ("0" if new_link[-1] != "0" else "1"),
        new_link.replace(file_id, "B" * 22),
    ):
        resp = await dropped.get(bad)
        assert resp.status in (403, 404) and resp.status != 200, bad


async def sign_upload(client: Client, headers: dict[str, str], **terms: Any) -> str:
    resp = await client.post("/sign", json={"upload": terms, "expires_in": 600}, headers=headers)
    assert resp.status == 200, await resp.text()
    return path_of((await resp.json())["url"])


async def test_upload_links_enforce_their_terms(
    make_client: ClientFactory, backend_store: Backend
) -> None:
    client = await jwt_client(make_client)
    alice = bearer(token("alice"))
    link = await sign_upload(client, alice, max_size=1000, type="image/*")
    path = urlsplit(link).path
    query = urlsplit(link).query

    resp = await client.put(
        f"{path}pic.png?{query}", data=b"p" * 1000, headers={"Content-Type": "image/png"}
    )
    assert resp.status == 201, await resp.text()
    made = await resp.json()
    assert made["size"] == 1000
    before = backend_store.names()

    async def chunked(n: int) -> AsyncIterator[bytes]:
        for _ in range(n):
            yield b"q" * 100
            await asyncio.sleep(0)

    refusals = [
        (b"p" * 1001, {"Content-Type": "image/png"}, 413),  # declared too large
        (chunked(11), {"Content-Type": "image/png"}, 413),  # grows too large while streaming
        (b"p" * 10, {"Content-Type": "text/html"}, 415),
        (b"p" * 10, {}, 415),
    ]
    for body, headers, status in refusals:
        resp = await client.put(f"{path}x.png?{query}", data=body, headers=headers)
        assert resp.status == status
        assert backend_store.names() == before  # nothing left behind
    # tampering with the terms
    resp = await client.put(
        f"{path}x.png?{query.replace('max_size=1000', 'max_size=9999')}",
        data=b"p",
        headers={"Content-Type": "image/png"},
    )
    assert resp.status == 403 and await error(resp) == "bad_signature"
    # the owner is alice's: she sees it, bob does not
    assert [f["id"] for f in await (await client.get("/files/", headers=alice)).json()] == [
        made["id"]
    ]
    bob_files = await (await client.get("/files/", headers=bearer(token("bob")))).json()
    assert bob_files == []
    # a form POST through the link
    form = {"file": (b"form-bytes", "form.png", "image/png")}
    import aiohttp

    data = aiohttp.FormData()
    data.add_field("file", form["file"][0], filename=form["file"][1], content_type=form["file"][2])
    resp = await client.post(link, data=data)
    assert resp.status == 201 and (await resp.json())["name"] == "form.png"


async def test_upload_link_signing_rules(make_client: ClientFactory) -> None:
    client = await jwt_client(make_client)
    alice = bearer(token("alice", max_upload_size=5000))
    resp = await client.post("/sign", json={"upload": {"max_size": 6000}}, headers=alice)
    assert resp.status == 400  # over her own cap
    resp = await client.post("/sign", json={"upload": {"owner": "bob"}}, headers=alice)
    assert resp.status == 403
    link = await sign_upload(client, alice)
    assert dict(parse_qsl(urlsplit(link).query))["max_size"] == "5000"
    admin = bearer(token("root", scope="admin"))
    link = await sign_upload(client, admin, owner="bob", max_size="1MiB")
    resp = await client.put(link, data=b"for bob")
    assert resp.status == 201
    bobs = await (await client.get("/files/", headers=bearer(token("bob")))).json()
    assert [f["size"] for f in bobs] == [7]
    no_secret = await make_client(auth="jwt", jwt_key=KEY)
    resp = await no_secret.post("/sign", json={"upload": {}}, headers=alice)
    assert resp.status == 403 and await error(resp) == "links_disabled"


async def test_tus_through_an_upload_link(make_client: ClientFactory) -> None:
    client = await jwt_client(make_client)
    link = await sign_upload(client, bearer(token("alice")), max_size=100)
    resp = await client.post(link, headers={**TUS, "Upload-Length": "101"})
    assert resp.status == 413
    resp = await client.post(
        link,
        headers={
            **TUS,
            "Upload-Length": "20",
            "Upload-Metadata": encode_metadata({"filename": "t.txt"}),
        },
    )
    assert resp.status == 201
    location = path_of(resp.headers["Location"])
    assert "sig=" in location and "expires=" in location
    bare = urlsplit(location).path
    assert (await client.head(bare, headers=TUS)).status == 401  # the id alone is not enough
    patch = {**TUS, "Content-Type": "application/offset+octet-stream"}
    resp = await client.patch(location, data=b"a" * 10, headers={**patch, "Upload-Offset": "0"})
    assert resp.status == 204
    resp = await client.head(location, headers=TUS)
    assert resp.status == 200 and resp.headers["Upload-Offset"] == "10"
    resp = await client.patch(location, data=b"b" * 10, headers={**patch, "Upload-Offset": "10"})
    assert resp.status == 204
    # the resume signature grants this upload only
    other = await tus_create(client, bearer(token("alice")))
    forged = urlsplit(other).path + "?" + urlsplit(location).query
    assert (await client.head(forged, headers=TUS)).status == 403
    files = await (await client.get("/files/", headers=bearer(token("alice")))).json()
    assert [(f["name"], f["size"]) for f in files] == [("t.txt", 20)]


# -- the hook -----------------------------------------------------------------------------


class SessionApp:
    """An application with cookie sessions, answering spigot's auth hook."""

    def __init__(self) -> None:
        self.sessions = {"s-alice": ("alice", "upload read"), "s-admin": ("root", "admin")}
        self.calls: list[dict[str, Any]] = []
        self.delay = 0.0

    async def hook(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.calls.append(body)
        await asyncio.sleep(self.delay)
        cookie = body.get("cookie") or ""
        session = dict(p.strip().split("=", 1) for p in cookie.split(";") if "=" in p).get("sid")
        if session not in self.sessions:
            return web.json_response({"error": "no session"}, status=401)
        sub, scope = self.sessions[session]
        return web.json_response({"sub": sub, "scope": scope})


@pytest.fixture
async def session_app() -> AsyncIterator[tuple[SessionApp, str]]:
    app_state = SessionApp()
    async with on_loopback("POST", "/auth", app_state.hook) as url:
        yield app_state, url


async def test_hook_mode(make_client: ClientFactory, session_app: tuple[SessionApp, str]) -> None:
    app_state, url = session_app
    client = await make_client(auth="hook", auth_hook_url=url)
    alice = {"Cookie": "theme=dark; sid=s-alice"}
    upload = await put(client, b"via cookie", alice)
    for _ in range(3):
        assert (await client.get(f"/files/{upload['id']}", headers=alice)).status == 200
    assert len(app_state.calls) == 1  # one credential, one hook call
    call = app_state.calls[0]
    assert call == {
        "method": "PUT",
        "path": "/files/f.bin",
        "upload_id": None,
        "authorization": None,
        "cookie": "theme=dark; sid=s-alice",
    }
    resp = await client.delete(f"/files/{upload['id']}", headers=alice)
    assert resp.status == 403 and await error(resp) == "insufficient_scope"
    resp = await client.get("/files/", headers={"Cookie": "sid=stolen"})
    assert resp.status == 401 and await error(resp) == "invalid_token"
    await client.get("/files/", headers={"Cookie": "sid=stolen"})
    assert len(app_state.calls) == 2  # refusals are cached too
    admin = {"Cookie": "sid=s-admin"}
    assert (await client.delete(f"/files/{upload['id']}", headers=admin)).status == 204
    # The header reaches the application as sent, whatever its scheme.
    await client.get("/files/", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert app_state.calls[-1]["authorization"] == "Basic dXNlcjpwYXNz"


async def test_hook_down_or_slow_fails_closed(
    make_client: ClientFactory, session_app: tuple[SessionApp, str]
) -> None:
    app_state, url = session_app
    down = await make_client(auth="hook", auth_hook_url="http://127.0.0.1:9/auth")
    resp = await down.get("/files/", headers={"Cookie": "sid=s-alice"})
    assert resp.status == 503 and await error(resp) == "auth_unavailable"
    assert resp.headers["Retry-After"] == "5"

    app_state.delay = 2.0
    slow = await make_client(auth="hook", auth_hook_url=url, auth_hook_timeout=0.3)
    started = time.monotonic()
    resp = await slow.get("/files/", headers={"Cookie": "sid=s-alice"})
    assert resp.status == 503 and await error(resp) == "auth_unavailable"
    assert time.monotonic() - started < 1.5
    app_state.delay = 0.0
    assert (await slow.get("/files/", headers={"Cookie": "sid=s-alice"})).status == 200


# -- open and public modes, CORS, structure -----------------------------------------------


async def test_public_downloads(make_client: ClientFactory) -> None:
    client = await jwt_client(make_client, public_downloads=True)
    upload = await put(client, b"for everyone", bearer(token()))
    resp = await client.get(f"/files/{upload['id']}")
    assert resp.status == 200 and await resp.read() == b"for everyone"
    assert (await client.get("/files/")).status == 401  # listing is not downloading
    assert (await client.delete(f"/files/{upload['id']}")).status == 401


async def test_cors_allows_authorization(make_client: ClientFactory) -> None:
    client = await jwt_client(make_client, cors_origin=("https://app.example",))
    resp = await client.options(
        "/files/",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,tus-resumable",
        },
    )
    assert resp.status == 204
    assert "Authorization" in resp.headers["Access-Control-Allow-Headers"].split(", ")
    assert resp.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert resp.headers["Access-Control-Allow-Credentials"] == "true"
    star = await jwt_client(make_client, cors_origin=("*",))
    resp = await star.get("/files/", headers={"Origin": "https://any.example"})
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in resp.headers
    assert "WWW-Authenticate" in resp.headers["Access-Control-Expose-Headers"]


async def test_every_route_is_guarded_but_the_open_ones(make_client: ClientFactory) -> None:
    client = await jwt_client(make_client)
    open_routes = set()
    for route in client.app.router.routes():
        if not hasattr(route.handler, "spigot_need"):
            open_routes.add((route.method, route.resource.canonical if route.resource else ""))
    assert open_routes == {
        ("GET", "/"),
        ("HEAD", "/"),
        ("GET", "/static/{name}"),
        ("HEAD", "/static/{name}"),
        ("GET", "/healthz"),
        ("HEAD", "/healthz"),
        ("GET", "/readyz"),
        ("HEAD", "/readyz"),
        ("GET", "/metrics"),  # its own check (routes/metrics.py), tested in test_metrics.py
        ("HEAD", "/metrics"),
        ("GET", "/api/config"),
        ("HEAD", "/api/config"),
        ("OPTIONS", "/files"),
        ("OPTIONS", "/files/"),
        ("OPTIONS", "/files/{id}"),
        ("GET", "/proxy"),
        ("HEAD", "/proxy"),
        ("GET", "/api/{token}"),  # Companion's socket: the token is its credential
    }
    assert (await client.get("/healthz")).status == 200
    assert (await client.options("/files/")).status == 204


async def test_api_config_tells_a_client_what_it_needs(make_client: ClientFactory) -> None:
    client = await jwt_client(make_client, max_upload_size=1 << 30)
    resp = await client.get("/api/config")  # no token: a client asks this first
    assert resp.status == 200
    config = await resp.json()
    assert config["auth"] == "jwt" and config["public_downloads"] is False
    assert config["limits"] == {"max_request_size": 100 * 1024**2, "max_upload_size": 1 << 30}
    assert config["tus"]["endpoint"] == "/files/" and "creation" in config["tus"]["extensions"]
    assert config["direct_uploads"]["enabled"] is True and config["signed_links"] is True
    assert config["direct_uploads"]["endpoint"] == "/s3"
    bare = await (await make_client()).get("/api/config")
    assert (await bare.json())["auth"] == "none"


async def test_the_deprecated_import_token_grants_import_only(
    make_client: ClientFactory,
    origin: Origin,  # noqa: F811
) -> None:
    legacy = "a-legacy-import-token-16+"
    client = await jwt_client(make_client, import_token=legacy, insecure_proxy_allow_private=True)
    resp = await client.post("/imports", json={"url": origin.url()}, headers=bearer(legacy))
    assert resp.status == 202
    resp = await client.get("/files/", headers=bearer(legacy))
    assert resp.status == 401 and await error(resp) == "invalid_token"  # not a JWT: no more
