"""CORS: off by default; with --cors-origin, preflights and exposed headers for browsers."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import ClientFactory

BACKENDS = ("local",)  # not about storage: one backend is enough

Client = TestClient  # type: ignore[type-arg]
APP = "https://app.example"


async def test_off_by_default(client: Client) -> None:
    resp = await client.get("/healthz", headers={"Origin": APP})
    assert "Access-Control-Allow-Origin" not in resp.headers
    pre = await client.options(
        "/files/", headers={"Origin": APP, "Access-Control-Request-Method": "POST"}
    )
    assert "Access-Control-Allow-Origin" not in pre.headers


@pytest.mark.parametrize(
    "path", ["/files/", "/files/" + "A" * 22, "/files/" + "A" * 22 + "/events"]
)
async def test_preflight(make_client: ClientFactory, path: str) -> None:
    client = await make_client(cors_origin=(APP, "http://other.example"))
    resp = await client.options(
        path,
        headers={
            "Origin": APP,
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "tus-resumable,upload-offset,content-type",
        },
    )
    assert resp.status == 204
    assert resp.headers["Access-Control-Allow-Origin"] == APP
    assert resp.headers["Vary"] == "Origin"
    assert "PATCH" in resp.headers["Access-Control-Allow-Methods"]
    allowed = {h.strip().lower() for h in resp.headers["Access-Control-Allow-Headers"].split(",")}
    assert {
        "tus-resumable",
        "upload-length",
        "upload-metadata",
        "upload-offset",
        "upload-checksum",
        "upload-concat",
        "x-http-method-override",
        "x-request-id",
        "content-type",
    } <= allowed


async def test_exposed_headers_on_answers_and_errors(make_client: ClientFactory) -> None:
    client = await make_client(cors_origin=(APP,))
    resp = await client.post(
        "/files/", headers={"Origin": APP, "Tus-Resumable": "1.0.0", "Upload-Length": "3"}
    )
    assert resp.status == 201
    assert resp.headers["Access-Control-Allow-Origin"] == APP
    exposed = {h.strip() for h in resp.headers["Access-Control-Expose-Headers"].split(",")}
    assert {
        "Location",
        "Upload-Offset",
        "Upload-Length",
        "Upload-Expires",
        "Upload-Metadata",
        "Tus-Resumable",
        "Tus-Version",
        "Tus-Extension",
        "Tus-Max-Size",
        "Link",  # a listing's next page, which the page's "Show more" follows
        "X-Total-Count",
    } <= exposed
    missing = await client.get("/files/" + "A" * 22, headers={"Origin": APP})
    assert missing.status == 404 and missing.headers["Access-Control-Allow-Origin"] == APP
    other = await client.get("/healthz", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers


async def test_wildcard(make_client: ClientFactory) -> None:
    client = await make_client(cors_origin=("*",))
    resp = await client.get("/healthz", headers={"Origin": "https://anyone.example"})
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    assert "Vary" not in resp.headers
