"""URL map. Each module under routes/ is one HTTP concern; this file only wires them, and
says what each route needs (server/auth): the table of routes and scopes in the README is
this file read aloud. The page (`/`, `/static/`), `/healthz`, `/readyz`, `/api/config`,
OPTIONS (tus discovery, CORS preflight), `/metrics` (its own token), `/proxy` (whose
links are their own signature) and `/api/{token}` (Companion's socket, whose token is its
credential) are the only routes without a guard.
"""

from aiohttp import web
from aiohttp.web_urldispatcher import MatchInfoError, UrlMappingMatchInfo, _default_expect_handler

from ..auth import Need, guarded, principal_of
from ..auth.principal import SCOPES
from ..context import SETTINGS
from ..errors import ApiError
from ..presign import add_presign_routes
from ..protocol import links
from ..resumable import (
    draft_create,
    draft_delete,
    draft_head,
    draft_patch,
    is_draft,
    is_draft_creation,
)
from ..web import add_web_routes
from .companion import transfer_socket, url_get, url_meta
from .config import api_config
from .downloads import get_file
from .events import file_events, progress_events
from .files import delete_file, list_files
from .health import healthz, readyz
from .imports import cancel_import, create_import, import_events, import_status, importer
from .me import api_me
from .metrics import metrics
from .proxy import proxy, upstream_session
from .sign import sign
from .tus import is_tus, method_override, tus_create, tus_delete, tus_head, tus_options, tus_patch
from .uploads import expect_continue, expect_no_body, expect_only_continue, post_file, put_file

# A `post` link fills one direct upload by form POST; it makes nothing else (see create).
UPLOAD = Need(("upload",), links=(links.UPLOAD, links.POST))
PUT = Need(("upload",), links=(links.UPLOAD,))
RESUME = Need(("upload",), links=(links.RESUME,))  # one tus upload, by its owner
READ = Need(("read",), links=(links.DOWNLOAD,), public=True)
LIST = Need(("read",))
DELETE = Need(("delete",))
EVENTS = Need(("read", "upload"), links=(links.DOWNLOAD, links.RESUME), query_token=True)
PROGRESS = Need(("read", "upload"), query_token=True)
IMPORT = Need(("import",), legacy_import=True)
IMPORT_STATUS = Need(("import",))
IMPORT_EVENTS = Need(("import",), query_token=True)
SIGN = Need(("sign",))
ANYONE = Need(tuple(sorted(SCOPES)))  # any valid credential: it asks who it is


# One URL space serves one-shot files, tus uploads and the IETF draft's: a request carrying
# Tus-Resumable is tus, as tusd and @tus/server decide it; one carrying a draft interop
# version spigot speaks is the draft's (server/resumable); anything else is one-shot.
async def create(request: web.Request) -> web.StreamResponse:
    resumable = is_tus(request) or is_draft_creation(request)
    if principal_of(request).link_kind == links.POST and resumable:
        raise ApiError(403, "bad_signature", "this link fills one upload by form POST")
    if is_draft_creation(request):
        return await draft_create(request)
    return await (tus_create if is_tus(request) else post_file)(request)


async def put(request: web.Request) -> web.StreamResponse:
    return await (draft_create if is_draft_creation(request) else put_file)(request)


async def head(request: web.Request) -> web.StreamResponse:
    if is_draft(request):
        return await draft_head(request)
    return await (tus_head if is_tus(request) else get_file)(request)


async def patch(request: web.Request) -> web.StreamResponse:
    return await (draft_patch if is_draft(request) else tus_patch)(request)


async def delete(request: web.Request) -> web.StreamResponse:
    if is_draft(request):
        return await draft_delete(request)
    return await (tus_delete if is_tus(request) else delete_file)(request)


def resuming(request: web.Request) -> bool:
    return is_tus(request) or is_draft(request)


def head_need(request: web.Request) -> Need:
    return RESUME if resuming(request) else READ


def delete_need(request: web.Request) -> Need:
    return RESUME if resuming(request) else DELETE


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/healthz", healthz)
    r.add_get("/readyz", readyz)
    if app[SETTINGS].metrics_port is None:  # else only on its own loopback port (cli.py)
        r.add_get("/metrics", metrics)  # its own check: --metrics-token, or admin
    r.add_get("/api/config", api_config)
    r.add_get("/api/me", guarded(ANYONE, api_me))
    for collection in ("/files", "/files/"):
        r.add_post(collection, guarded(UPLOAD, create), expect_handler=expect_continue(UPLOAD))
        # curl -T - URL/files/
        r.add_put(collection, guarded(PUT, put), expect_handler=expect_continue(PUT))
        r.add_get(collection, guarded(LIST, list_files))
        r.add_route("OPTIONS", collection, tus_options)
    r.add_put("/files/{name}", guarded(PUT, put), expect_handler=expect_continue(PUT))
    r.add_get("/files/{id}", guarded(READ, get_file), allow_head=False)
    r.add_route("HEAD", "/files/{id}", guarded(head_need, head))
    r.add_patch("/files/{id}", guarded(RESUME, patch), expect_handler=expect_continue(RESUME))
    r.add_delete("/files/{id}", guarded(delete_need, delete))
    r.add_post(
        "/files/{id}",
        guarded(RESUME, method_override),
        expect_handler=expect_continue(RESUME),
    )
    r.add_route("OPTIONS", "/files/{id}", tus_options)
    r.add_get("/files/{id}/events", guarded(EVENTS, file_events))
    r.add_get("/progress/{token}/events", guarded(PROGRESS, progress_events))
    r.add_get("/proxy", proxy)  # add_get also answers HEAD
    app.cleanup_ctx.append(upstream_session)
    r.add_post("/imports", guarded(IMPORT, create_import))
    r.add_get("/imports/{id}", guarded(IMPORT_STATUS, import_status))
    r.add_delete("/imports/{id}", guarded(IMPORT_STATUS, cancel_import))
    r.add_get("/imports/{id}/events", guarded(IMPORT_EVENTS, import_events))
    app.cleanup_ctx.append(importer)
    # Uppy Companion's URL provider (@uppy/url): a link pasted there is an import. A
    # browser's WebSocket carries no Authorization header: the token, which only the caller
    # of /url/get was given (128 random bits), is the socket's credential, as in Companion.
    r.add_post("/url/meta", guarded(IMPORT, url_meta))
    r.add_post("/url/get", guarded(IMPORT, url_get))
    r.add_get("/api/{token}", transfer_socket, allow_head=False)
    r.add_post("/sign", guarded(SIGN, sign))
    add_presign_routes(app)
    add_web_routes(app)  # the page at / (open: it asks for a token itself)
    # aiohttp takes an expect handler per route only; every route left with its default
    # gets spigot's, which answers in JSON like the rest (uploads.expect_only_continue).
    for route in r.routes():
        if route._expect_handler is _default_expect_handler:
            route._expect_handler = expect_only_continue
    # A request no route takes gets an error route aiohttp makes for it, with aiohttp's own
    # expect handler: a plain-text 417, and a 500 for a value that is not UTF-8.
    resolve = r.resolve

    async def resolve_with_json_expect(request: web.Request) -> UrlMappingMatchInfo:
        match = await resolve(request)
        if isinstance(match, MatchInfoError):
            match.route._expect_handler = expect_no_body
        return match

    r.resolve = resolve_with_json_expect  # type: ignore[method-assign]
