from aiohttp import web

from ..context import store_of


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "storage": store_of(request).describe()})
