"""The web page's server side: the committed assets are exactly what client_js/ builds,
they are served with a strict policy and validators, and `/api/me` says what the page
may show. (The page in a browser is tests/test_web_page.py.)"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from server.web.routes import STATIC
from server.web.security import content_security_policy, page_headers
from tests.conftest import ROOT, ClientFactory
from tests.test_auth import bearer, jwt_client, token
from tests.tools import npm_ci, require

PACKAGE = ROOT / "client_js"


def test_committed_assets_are_what_client_js_builds(tmp_path: Path) -> None:
    """A reproducible esbuild build: a change to client_js/ must come with its rebuild
    (`cd client_js && npm run build`), or this fails."""
    npm_ci(PACKAGE, "esbuild", "tus-js-client", "hash-wasm")
    out = tmp_path / "static"
    done = subprocess.run(
        [require("node"), "build.mjs", str(out)],
        cwd=PACKAGE,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    built = {p.name: p.read_bytes() for p in out.iterdir()}
    committed = {p.name: p.read_bytes() for p in STATIC.iterdir()}
    assert sorted(built) == sorted(committed)
    assert sorted(built) == ["app.css", "app.js", "favicon.svg", "index.html", "spigot-client.js"]
    stale = [name for name in built if built[name] != committed[name]]
    assert stale == [], f"rebuild with `cd client_js && npm run build`: {stale} differ"


@pytest.mark.parametrize(
    ("connect", "expected"),
    [
        ((), "connect-src 'self';"),
        (
            ("https://bucket.s3.amazonaws.com",),
            "connect-src 'self' https://bucket.s3.amazonaws.com;",
        ),
    ],
)
def test_the_policy(connect: tuple[str, ...], expected: str) -> None:
    policy = content_security_policy(connect)
    assert policy.startswith("default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; ")
    assert "style-src 'self';" in policy and expected in policy
    assert "unsafe-inline" not in policy and "'unsafe-eval'" not in policy
    assert policy.endswith("form-action 'none'; base-uri 'none'; frame-ancestors 'none'")


async def test_the_page_and_its_assets(make_client: ClientFactory) -> None:
    client = await jwt_client(make_client)  # the page itself needs no token: it asks for one
    page = await client.get("/")
    assert page.status == 200
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    for name, value in page_headers().items():
        assert page.headers[name] == value
    html = await page.text()
    assert '<script type="module" src="/static/app.js"></script>' in html
    assert "<style" not in html and " style=" not in html and "<script>" not in html
    script = await client.get("/static/app.js")
    assert script.status == 200
    assert script.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert (await script.read()) == (STATIC / "app.js").read_bytes()
    again = await client.get("/static/app.js", headers={"If-None-Match": script.headers["ETag"]})
    assert again.status == 304
    style = await client.get("/static/app.css")
    assert style.headers["Content-Type"] == "text/css; charset=utf-8"
    assert (await client.head("/")).status == 200


@pytest.mark.parametrize(
    "path", ["/static/nope.js", "/static/index.html", "/static/..%2froutes.py"]
)
async def test_only_built_assets_are_served(make_client: ClientFactory, path: str) -> None:
    client = await make_client()
    resp = await client.get(path)
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "not_found"


async def test_api_me_says_who_and_what(make_client: ClientFactory) -> None:
    client = await jwt_client(make_client)
    resp = await client.get("/api/me", headers=bearer(token(scope="upload read")))
    assert resp.status == 200 and resp.headers["Cache-Control"] == "no-store"
    assert await resp.json() == {
        "sub": "alice",
        "scopes": ["read", "upload"],
        "admin": False,
        "max_upload_size": None,
    }
    admin = await client.get("/api/me", headers=bearer(token(sub="root", scope="admin")))
    assert (await admin.json())["scopes"] == ["admin", "delete", "import", "read", "sign", "upload"]
    missing = await client.get("/api/me")
    assert missing.status == 401 and missing.headers["WWW-Authenticate"] == 'Bearer realm="spigot"'
    open_client = await make_client()
    opened = await (await open_client.get("/api/me")).json()
    assert opened["admin"] is True and opened["sub"] is None
