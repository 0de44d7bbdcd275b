"""URL map. Each module under routes/ is one HTTP concern; this file only wires them."""

from aiohttp import web

from .downloads import get_file
from .events import file_events, progress_events
from .files import delete_file, list_files
from .health import healthz
from .imports import create_import, import_events, import_status, importer
from .proxy import proxy, upstream_session
from .tus import is_tus, method_override, tus_create, tus_delete, tus_head, tus_options, tus_patch
from .uploads import expect_continue, post_file, put_file


# One URL space serves both one-shot files and tus uploads: a request carrying
# Tus-Resumable is tus, as tusd and @tus/server decide it.
async def create(request: web.Request) -> web.StreamResponse:
    return await (tus_create if is_tus(request) else post_file)(request)


async def head(request: web.Request) -> web.StreamResponse:
    return await (tus_head if is_tus(request) else get_file)(request)


async def delete(request: web.Request) -> web.StreamResponse:
    return await (tus_delete if is_tus(request) else delete_file)(request)


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/healthz", healthz)
    for collection in ("/files", "/files/"):
        r.add_post(collection, create, expect_handler=expect_continue)
        r.add_put(collection, put_file, expect_handler=expect_continue)  # curl -T - URL/files/
        r.add_get(collection, list_files)
        r.add_route("OPTIONS", collection, tus_options)
    r.add_put("/files/{name}", put_file, expect_handler=expect_continue)
    r.add_get("/files/{id}", get_file, allow_head=False)
    r.add_route("HEAD", "/files/{id}", head)
    r.add_patch("/files/{id}", tus_patch, expect_handler=expect_continue)
    r.add_delete("/files/{id}", delete)
    r.add_post("/files/{id}", method_override, expect_handler=expect_continue)
    r.add_route("OPTIONS", "/files/{id}", tus_options)
    r.add_get("/files/{id}/events", file_events)
    r.add_get("/progress/{token}/events", progress_events)
    r.add_get("/proxy", proxy)  # add_get also answers HEAD
    app.cleanup_ctx.append(upstream_session)
    r.add_post("/imports", create_import)
    r.add_get("/imports/{id}", import_status)
    r.add_get("/imports/{id}/events", import_events)
    app.cleanup_ctx.append(importer)
