"""--accel-redirect: spigot does every check, then hands the bytes to nginx by path."""

from __future__ import annotations

import hashlib

import pytest

from server.protocol import accel
from server.settings import SettingError, Settings, parse_accel_prefix
from tests.conftest import ClientFactory
from tests.test_auth import bearer, jwt_client, token


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("/_spigot_files/", True),
        ("/a/b-c.d~e/", True),
        ("_spigot_files/", False),
        ("/_spigot_files", False),
        ("/a//b/", False),
        ("/a/../b/", False),
        ("/a b/", False),
    ],
)
def test_the_prefix(value: str, ok: bool) -> None:
    if ok:
        assert parse_accel_prefix(value) == value
    else:
        with pytest.raises(SettingError):
            parse_accel_prefix(value)


async def test_get_answers_with_the_files_path_after_the_checks(
    make_client: ClientFactory, backend: str
) -> None:
    client = await jwt_client(make_client, accel_redirect="/_spigot_files/")
    alice = bearer(token())
    data = b"<html>active content</html>"
    put = await client.put("/files/page.html", data=data, headers=alice)
    file_id = (await put.json())["id"]
    resp = await client.get(f"/files/{file_id}", headers=alice)
    if backend == "s3":  # no local path to hand over: spigot sends the bytes itself
        assert resp.status == 200 and await resp.read() == data
        assert "X-Accel-Redirect" not in resp.headers
        return
    assert resp.status == 200 and await resp.read() == b""
    assert resp.headers["X-Accel-Redirect"] == f"/_spigot_files/{file_id}"
    assert resp.headers["ETag"] == f'"{hashlib.sha256(data).hexdigest()}"'
    assert resp.headers["Content-Type"].startswith("text/html")
    assert resp.headers["Content-Security-Policy"] == "sandbox"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    # the checks still come first: no token, another owner, a matching If-None-Match
    assert (await client.get(f"/files/{file_id}")).status == 401
    bob = await client.get(f"/files/{file_id}", headers=bearer(token(sub="bob")))
    assert bob.status == 404 and "X-Accel-Redirect" not in bob.headers
    same = await client.get(
        f"/files/{file_id}", headers={**alice, "If-None-Match": resp.headers["ETag"]}
    )
    assert same.status == 304 and "X-Accel-Redirect" not in same.headers
    # HEAD too is handed over (nginx answers it from the file), and says the length
    head = await client.head(f"/files/{file_id}", headers=alice)
    assert head.status == 200 and head.headers["Content-Length"] == str(len(data))
    assert head.headers["X-Accel-Redirect"] == f"/_spigot_files/{file_id}"


NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("granted_by", "expires", "most", "seconds"),
    [
        ("link", str(int(NOW) + 3600), 60.0, 60),  # bounded by --accel-reuse
        ("link", str(int(NOW) + 20), 60.0, 20),  # by the link's expiry
        ("link", str(int(NOW) + 20), 60.9, 20),
        ("link", str(int(NOW) - 5), 60.0, 0),  # expired: nothing to keep
        ("link", None, 60.0, 0),  # a link without expiry is not one spigot signed
        ("link", "soon", 60.0, 0),
        ("public", None, 60.9, 60),  # whole seconds, rounded down
        ("public", None, 0.0, 0),  # --accel-reuse off
        (None, None, 60.0, 0),  # a token, or an open server: never
        ("token", None, 60.0, 0),
    ],
)
def test_how_long_nginx_may_reuse_an_answer(
    granted_by: str | None, expires: str | None, most: float, seconds: int
) -> None:
    assert accel.reuse_seconds(granted_by, expires, most, NOW) == seconds


def test_reuse_needs_the_redirect() -> None:
    with pytest.raises(SettingError, match="--accel-reuse needs --accel-redirect"):
        Settings.resolve({"accel_reuse": "60s"}, {})
    kept = Settings.resolve({"accel_reuse": "60s", "accel_redirect": "/_spigot_files/"}, {})
    assert kept.accel_reuse == 60.0


async def test_only_answers_to_links_and_public_files_are_marked_to_keep(
    make_client: ClientFactory, backend: str
) -> None:
    reuse = {"accel_redirect": "/_spigot_files/", "accel_reuse": 60.0}
    client = await jwt_client(make_client, **reuse)
    alice = bearer(token())
    put = await client.put("/files/clip.mp4", data=b"frames", headers=alice)
    file_id = (await put.json())["id"]
    signed = await client.post("/sign", json={"file": file_id, "expires_in": "30s"}, headers=alice)
    link = "/" + (await signed.json())["url"].split("/", 3)[3]
    by_link = await client.get(link)
    if backend == "s3":  # spigot sends the bytes itself: there is no answer to keep
        assert by_link.status == 200 and await by_link.read() == b"frames"
        assert "X-Accel-Redirect" not in by_link.headers
        assert "X-Accel-Expires" not in by_link.headers
        return
    assert by_link.status == 200 and by_link.headers["X-Accel-Redirect"]
    assert 29 <= int(by_link.headers["X-Accel-Expires"]) <= 30  # the link's life, not 60 s
    # first: nginx lets X-Accel-Expires outweigh Cache-Control only when it comes before it
    names = [name.lower() for name in by_link.headers]
    assert names.index("x-accel-expires") < names.index("cache-control")
    by_token = await client.get(f"/files/{file_id}", headers=alice)
    assert by_token.status == 200 and by_token.headers["X-Accel-Redirect"]
    assert "X-Accel-Expires" not in by_token.headers  # the token's grant, not the URL's
    forged = await client.get(link[:-2] + ("00" if not link.endswith("00") else "11"))
    assert forged.status == 403 and "X-Accel-Expires" not in forged.headers

    public = await jwt_client(make_client, public_downloads=True, **reuse)
    put = await public.put("/files/open.bin", data=b"x", headers=alice)
    got = await public.get(f"/files/{(await put.json())['id']}")
    assert got.status == 200 and got.headers["X-Accel-Expires"] == "60"


async def test_without_the_flag_nothing_is_marked(make_client: ClientFactory, backend: str) -> None:
    client = await jwt_client(make_client, accel_redirect="/_spigot_files/", public_downloads=True)
    put = await client.put("/files/a.bin", data=b"x", headers=bearer(token()))
    got = await client.get(f"/files/{(await put.json())['id']}")
    assert got.status == 200
    assert ("X-Accel-Redirect" in got.headers) == (backend == "local")
    assert "X-Accel-Expires" not in got.headers
