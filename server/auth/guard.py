"""The decision every protected route makes first: who is asking, and may they.

Each route in `server/routes/__init__.py` is registered with a `Need` (scopes and the link
kinds that stand in for a token), so the URL map is also the table of routes and scopes.
Routes then ask `principal_of(request)` for ownership and limits; a route that was not
guarded has no principal, and asking for one is a programming error, never an open door.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

from storage import UploadInfo

from ..context import SETTINGS, settings_of
from ..errors import ApiError
from ..protocol import links
from ..protocol.bearer import BadAuthorization, bearer_token
from ..protocol.media import type_allowed
from ..settings import Settings
from . import errors
from .hook import AuthHook
from .principal import OPEN, Principal

if TYPE_CHECKING:
    from .tokens import JwtVerifier

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Need:
    scopes: tuple[str, ...]  # any one of them will do
    links: tuple[str, ...] = ()  # signed link kinds that stand in for a token here
    query_token: bool = False  # also `?access_token=` (RFC 6750 2.3): EventSource sets no headers
    public: bool = False  # open to anyone under --public-downloads
    legacy_import: bool = False  # under --auth none, the deprecated --import-token guards it


class Authenticator:
    """The mode's way of turning a request's credential into a Principal."""

    def __init__(self, settings: Settings) -> None:
        self.mode = settings.auth
        self.import_token = settings.import_token
        self.jwt: JwtVerifier | None = None
        if settings.auth == "jwt":
            # Imported here, not at the top: PyJWT and cryptography add about 9 MiB to every
            # process's RSS, which the other modes never use.
            from .tokens import JwtVerifier

            self.jwt = JwtVerifier(settings)
        self.hook = (
            AuthHook(settings.auth_hook_url, settings.auth_hook_cache, settings.auth_hook_timeout)
            if settings.auth == "hook" and settings.auth_hook_url
            else None
        )

    async def identify(self, request: web.Request, need: Need) -> Principal:
        if self._legacy_import(request, need):
            return Principal(sub=None, scopes=frozenset({"import"}))
        if self.hook is not None:
            # The application decides, on the header as sent (Basic, a session scheme...).
            raw = request.headers.get("Authorization")
            if raw is None and need.query_token and request.query.get("access_token"):
                raw = f"Bearer {request.query['access_token']}"
            return await self.hook.identify(request, raw)
        try:
            token = bearer_token(request.headers.get("Authorization"))
        except BadAuthorization as exc:
            raise errors.invalid_request(str(exc)) from None
        if token is None and need.query_token:
            token = request.query.get("access_token") or None
        if self.mode == "none":
            if self.import_token and need.legacy_import:
                raise errors.missing() if token is None else errors.invalid_token("unknown token")
            return OPEN
        if token is None:
            raise errors.missing()
        assert self.jwt is not None
        return await self.jwt.verify(token)

    def _legacy_import(self, request: web.Request, need: Need) -> bool:
        """Deprecated: the one token of --import-token grants the import scope alone."""
        if not self.import_token or "import" not in need.scopes:
            return False
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(token.strip().encode(), self.import_token.encode())


AUTHENTICATOR = web.AppKey("authenticator", Authenticator)
PRINCIPAL = web.RequestKey("principal", Principal)


async def authenticator_lifecycle(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: the mode's authenticator, and the hook's client session."""
    auth = Authenticator(app[SETTINGS])
    app[AUTHENTICATOR] = auth
    if auth.hook is not None:
        await auth.hook.start()
    yield
    if auth.hook is not None:
        await auth.hook.close()


def from_link(request: web.Request, need: Need) -> Principal:
    keys = settings_of(request).secret
    if not keys:
        raise errors.bad_link("signed links need --secret")
    upload_id = request.match_info.get("id") or request.query.get("upload")
    part = request.match_info.get("part")
    subject = f"{upload_id}/{part}" if upload_id and part else upload_id
    try:
        grant = links.verify(keys, need.links, request.query, subject, time.time())
    except links.LinkRefused as exc:
        raise errors.bad_link(str(exc)) from None
    if grant.terms is None:  # a link to one upload: that one, nothing else
        scope = "read" if grant.kind == links.DOWNLOAD else "upload"
        return Principal(
            sub=None, scopes=frozenset({scope}), only_upload=upload_id, link_kind=grant.kind
        )
    return Principal(
        sub=grant.terms.owner,
        scopes=frozenset({"upload"}),
        max_upload_size=grant.terms.max_size,
        upload_type=grant.terms.type,
        via_link=True,
    )


async def authenticate(request: web.Request, need: Need) -> Principal:
    """The request's principal, checked against `need`; the 4xx/503 if it has none."""
    known = request.get(PRINCIPAL)
    if isinstance(known, Principal):
        return known
    settings = settings_of(request)
    if need.links and links.is_signed(request.query):
        principal = from_link(request, need)
    elif need.public and settings.public_downloads:
        principal = Principal(
            sub=None,
            scopes=frozenset({"read"}),
            only_upload=request.match_info.get("id"),
            public=True,
        )
    else:
        principal = await request.app[AUTHENTICATOR].identify(request, need)
    if not any(principal.can(scope) for scope in need.scopes):
        raise errors.insufficient_scope(need.scopes)
    request[PRINCIPAL] = principal
    return principal


def guarded(need: Need | Callable[[web.Request], Need], handler: Handler) -> Handler:
    """`handler`, run only for a request that meets `need` (or what `need(request)` says,
    for the URLs that serve tus and plain HTTP alike)."""

    async def guard(request: web.Request) -> web.StreamResponse:
        await authenticate(request, need(request) if callable(need) else need)
        return await handler(request)

    guard.__name__ = guard.__qualname__ = f"guarded_{handler.__name__}"
    guard.__doc__ = handler.__doc__
    guard.spigot_need = need  # type: ignore[attr-defined]
    return guard


def principal_of(request: web.Request) -> Principal:
    principal = request.get(PRINCIPAL)
    if not isinstance(principal, Principal):
        raise RuntimeError(f"{request.method} {request.path} reached a handler unguarded")
    return principal


def owned(request: web.Request, info: UploadInfo) -> None:
    """404 unless the caller may see this upload: the same answer as an unknown id."""
    if not principal_of(request).owns(info):
        raise ApiError(404, "not_found", "no such file or upload")


def upload_cap(request: web.Request, server_cap: int) -> int:
    """The most one upload (or one request body) may hold for this caller: the server's
    cap (0: none), lowered by a token's max_upload_size. An upload link's max_size is what
    its signer chose, so for a one-shot body it replaces --max-request-size, still within
    --max-upload-size."""
    principal = principal_of(request)
    mine = principal.max_upload_size
    if mine is None:
        return server_cap
    if principal.via_link:
        ceiling = settings_of(request).max_upload_size
        return min(mine, ceiling) if ceiling else mine
    return min(mine, server_cap) if server_cap else mine


def check_upload_type(request: web.Request, media_type: str | None) -> None:
    """An upload link's type is a condition of the upload, as in S3's POST policy."""
    pattern = principal_of(request).upload_type
    if pattern is not None and not type_allowed(media_type or "", (pattern,)):
        raise ApiError(
            415, "type_not_allowed", f"this upload link takes {pattern} files only", close=True
        )
