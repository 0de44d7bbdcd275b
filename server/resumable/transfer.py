"""Taking a draft request's body into an upload, and completing it: shared by creation and
append, which differ only in what they check first."""

from __future__ import annotations

import hmac

from aiohttp import web

from storage import Upload
from storage.errors import ChecksumMismatch, LengthExceeded
from storage.hashing import ChunkVerifier

from ..context import lifecycle_of
from ..errors import ApiError
from ..protocol import digests, rufh
from ..responses import file_json, file_url
from . import interim
from .common import state
from .problems import inconsistent_length
from .session import receive, runs_past

# Where a creation's `Repr-Digest` (sha-256) waits for the upload to complete.
REPR_KEY = "repr-digest-sha256"


def content_verifier(request: web.Request) -> ChunkVerifier | None:
    """`Content-Digest` on a creation or append: the body is kept only if it matches (the
    strongest algorithm given that spigot computes)."""
    given = digests.digests(request.headers.get("Content-Digest"))
    for algorithm in ("sha512", "sha256"):
        if algorithm in given:
            return ChunkVerifier(algorithm, given[algorithm])
    return None


def expected_repr(request: web.Request) -> dict[str, str]:
    """A creation's `Repr-Digest`, as metadata the completing request will check."""
    given = digests.digests(request.headers.get("Repr-Digest")).get("sha256")
    return {REPR_KEY: given.hex()} if given else {}


def implied_length(
    request: web.Request,
    version: rufh.Interop,
    offset: int,
    length: int | None,
    complete: bool,
) -> int | None:
    """The length this request implies, checked against the upload's and its own two
    indicators (`Upload-Length`; `Upload-Complete: ?1` with `Content-Length`)."""
    declared = rufh.non_negative(request.headers.get("Upload-Length"))
    implied = None
    if complete and request.content_length is not None:
        implied = offset + request.content_length
    known = [n for n in (length, declared, implied) if n is not None]
    if any(n != known[0] for n in known):
        raise inconsistent_length(
            "Upload-Length, Content-Length and the upload's length disagree",
            {**rufh.completeness_header(version, False)},
        )
    if known and runs_past(request, offset, known[0]):
        raise inconsistent_length(
            f"the content goes past the upload's length of {known[0]} bytes",
            {**rufh.completeness_header(version, False)},
        )
    return known[0] if known else None


async def take(
    request: web.Request,
    version: rufh.Interop,
    upload: Upload,
    offset: int,
    complete: bool,
) -> None:
    """Append the body (lock held), with progress 104s, then complete the upload if the
    request said so or its length is reached."""
    try:
        await receive(
            request,
            upload,
            offset,
            content_verifier(request),
            lambda: interim.progress(request, version, upload),
        )
    except ChecksumMismatch:
        raise ApiError(
            400,
            "digest_mismatch",
            "the content does not match Content-Digest; none of it was kept",
            state(request, version, upload.info),
        ) from None
    except LengthExceeded:  # a chunked body: what fits is kept, and the offset says so
        if upload.info.offset == upload.info.length:
            await finish(request, version, upload)
        raise inconsistent_length(
            f"the content goes past the upload's length of {upload.info.length} bytes",
            state(request, version, upload.info),
        ) from None
    info = upload.info
    if complete:
        if info.length is None:
            await upload.declare_length(info.offset)
        elif info.offset != info.length:
            raise inconsistent_length(
                f"the request completes the upload at {info.offset} of its {info.length} bytes",
                state(request, version, info),
            )
    if info.length is not None and info.offset == info.length:
        await finish(request, version, upload)


async def settle(request: web.Request, version: rufh.Interop, upload: Upload) -> None:
    """Finish an upload whose last bytes landed before the process died (lock held), as
    tus's settle() does, with the draft's Repr-Digest check."""
    if upload.info.awaits_finish:
        await finish(request, version, upload)


async def finish(request: web.Request, version: rufh.Interop, upload: Upload) -> None:
    """Complete the upload; a `Repr-Digest` given at creation must match the whole file,
    or the upload is removed (the representation arrived, but it is not the one meant)."""
    if upload.info.is_complete:
        return
    info = await upload.finish()
    url = file_url(request, info.id)
    lifecycle = lifecycle_of(request)
    expected = info.metadata.get(REPR_KEY)
    if expected and not hmac.compare_digest(expected, info.sha256 or ""):
        await upload.delete(gone="terminated")
        lifecycle.terminated(info, url)
        raise ApiError(
            400,
            "digest_mismatch",
            "the upload does not match the Repr-Digest it was created with; it was removed",
            {**rufh.completeness_header(version, True)},
        )
    await lifecycle.finished(upload, url)


def completed_response(
    request: web.Request, version: rufh.Interop, upload: Upload, location: str
) -> web.Response:
    """What the creating POST answers had it carried the whole file (201 and the file's
    JSON), with the draft's state fields beside it."""
    info = upload.info
    headers = {**state(request, version, info), "Location": location}
    if info.sha256:
        headers["Repr-Digest"] = digests.digest_header(info.sha256)
    return web.json_response(
        file_json(info, file_url(request, info.id)), status=201, headers=headers
    )
