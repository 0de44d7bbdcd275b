"""`GET /` (the page) and `GET /static/{name}` (its built assets).

Only the files that are in `static/` when spigot starts are served, looked up by name in a
table, so no request path ever reaches the filesystem. aiohttp's FileResponse sends them
with an ETag and answers conditional requests, off the event loop.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from ..errors import ApiError
from .security import page_headers

STATIC = Path(__file__).parent / "static"
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".map": "application/json",
}
ASSETS = web.AppKey("web_assets", dict[str, Path])


def _assets() -> dict[str, Path]:
    if not STATIC.is_dir():
        return {}
    return {p.name: p for p in STATIC.iterdir() if p.is_file() and p.suffix in TYPES}


def _send(path: Path) -> web.FileResponse:
    headers = {**page_headers(), "Content-Type": TYPES[path.suffix]}
    return web.FileResponse(path, headers=headers)


async def index(request: web.Request) -> web.StreamResponse:
    page = request.app[ASSETS].get("index.html")
    if page is None:
        raise ApiError(404, "no_page", "this spigot was installed without its web page")
    return _send(page)


async def asset(request: web.Request) -> web.StreamResponse:
    path = request.app[ASSETS].get(request.match_info["name"])
    if path is None or path.name == "index.html":
        raise ApiError(404, "not_found", "no such asset")
    return _send(path)


def add_web_routes(app: web.Application) -> None:
    app[ASSETS] = _assets()
    app.router.add_get("/", index)
    app.router.add_get("/static/{name}", asset)
