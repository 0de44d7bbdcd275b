"""Nothing a client sends may produce a 500: random headers and names through the real app."""

from __future__ import annotations

from urllib.parse import quote

from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ClientFactory

BACKENDS = ("local",)  # not about storage: one backend is enough

Client = TestClient  # type: ignore[type-arg]

# Header values must be latin-1 without CR/LF to be sendable at all.
header_text = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
    max_size=80,
)
range_like = st.from_regex(r"(bytes|BYTES|items)?=?[0-9 ,\-]{0,40}", fullmatch=True)
fuzz = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@fuzz
@given(
    range_header=st.one_of(range_like, header_text),
    if_range=header_text,
    conditional=st.sampled_from(
        ["If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since"]
    ),
    conditional_value=header_text,
    method=st.sampled_from(["GET", "HEAD"]),
)
async def test_download_headers_never_500(
    make_client: ClientFactory,
    range_header: str,
    if_range: str,
    conditional: str,
    conditional_value: str,
    method: str,
) -> None:
    client = await make_client()
    try:
        resp = await client.post("/files/?name=f.bin", data=bytes(range(256)) * 8)
        file_id = (await resp.json())["id"]
        headers = {"Range": range_header, "If-Range": if_range, conditional: conditional_value}
        got = await client.request(method, f"/files/{file_id}", headers=headers)
        await got.read()
        assert got.status in (200, 206, 304, 412, 416)
    finally:
        await client.close()


@fuzz
@given(name=st.text(max_size=120), disposition=header_text, content_type=header_text)
async def test_upload_names_and_types_never_500(
    make_client: ClientFactory, name: str, disposition: str, content_type: str
) -> None:
    client = await make_client()
    try:
        for url, headers in [
            (f"/files/?name={quote(name)}", {"Content-Type": content_type}),
            ("/files/", {"Content-Disposition": disposition}),
            (f"/files/{quote(name, safe='')}" if name else "/files/x", {}),
        ]:
            method = "PUT" if url.count("/") == 2 and not url.startswith("/files/?") else "POST"
            resp = await client.request(method, url, data=b"data", headers=headers)
            body = await resp.read()
            assert resp.status < 500, body
            if resp.status == 201:
                doc = await resp.json()
                got = await client.get(f"/files/{doc['id']}")
                assert got.status == 200 and await got.read() == b"data"
                assert "\n" not in got.headers["Content-Disposition"]
    finally:
        await client.close()


digest_like = st.from_regex(
    r"(sha-256|sha-512|md5)=:[A-Za-z0-9+/=]{0,50}:(, ?[a-z-]+=:[A-Za-z0-9+/=]{0,10}:)?",
    fullmatch=True,
)


md5_like = st.one_of(
    st.from_regex(r"[A-Za-z0-9+/]{0,30}={0,2}", fullmatch=True),
    # 16 bytes that are not the body's MD5, and the body's (b"digested")
    st.sampled_from(["jgl6p/BpQ+r0Jb0vZ7AsbA==", "5ErISLVAU63u9fxH0arbNg=="]),
)


@fuzz
@given(
    content_digest=st.one_of(st.none(), digest_like, header_text),
    repr_digest=st.one_of(st.none(), digest_like, header_text),
    content_md5=st.one_of(st.none(), md5_like, header_text),
)
async def test_digest_fields_never_500(
    make_client: ClientFactory,
    content_digest: str | None,
    repr_digest: str | None,
    content_md5: str | None,
) -> None:
    """Any Content-Digest, Repr-Digest or Content-MD5 on a one-shot upload: kept (the bytes
    as sent) or refused as a bad or mismatched digest, never anything else."""
    client = await make_client()
    try:
        fields = {
            "Content-Digest": content_digest,
            "Repr-Digest": repr_digest,
            "Content-MD5": content_md5,
        }
        headers = {k: v for k, v in fields.items() if v is not None}
        resp = await client.put("/files/d.bin", data=b"digested", headers=headers)
        doc = await resp.json()
        assert resp.status in (201, 400), doc
        if resp.status == 400:
            assert doc["error"]["code"] in ("digest_mismatch", "bad_digest")
        else:
            got = await client.get(f"/files/{doc['id']}")
            assert await got.read() == b"digested"
    finally:
        await client.close()
