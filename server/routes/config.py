"""`GET /api/config`: what this spigot offers, so one client works with any spigot.

Open, like `/healthz`: a client reads it before it has a token, to know whether it needs
one. It says nothing a client could not learn by trying, and nothing secret.
"""

from __future__ import annotations

from aiohttp import web

from storage import DirectSigner, DirectStore

from ..context import settings_of, store_of
from ..protocol import tus


async def api_config(request: web.Request) -> web.Response:
    settings = settings_of(request)
    store = store_of(request)
    direct = isinstance(store, DirectStore) and (
        isinstance(store, DirectSigner) or bool(settings.secret)
    )
    return web.json_response(
        {
            "auth": settings.auth,
            "public_downloads": settings.public_downloads,
            "limits": {
                "max_request_size": settings.max_request_size or None,
                "max_upload_size": settings.max_upload_size or None,
            },
            "tus": {
                "endpoint": "/files/",
                "version": tus.TUS_VERSION,
                "extensions": tus.EXTENSIONS.split(","),
                "checksum_algorithms": list(tus.CHECKSUM_ALGORITHMS),
            },
            "direct_uploads": {
                "enabled": direct,
                "endpoint": "/s3" if direct else None,
                "storage": "s3" if isinstance(store, DirectSigner) else "local",
            },
            "signed_links": bool(settings.secret),
            "imports": True,
        },
        headers={"Cache-Control": "no-cache"},
    )
