"""`GET /api/me`: who the credential says the caller is, and what they may do.

A page or app shows only the buttons that will work (no Delete without the `delete` scope)
without decoding tokens itself, and it works the same in hook mode, where the token is
the application's own and means nothing to a browser.
"""

from __future__ import annotations

from aiohttp import web

from ..auth import principal_of
from ..auth.principal import SCOPES


async def api_me(request: web.Request) -> web.Response:
    caller = principal_of(request)
    scopes = sorted(s for s in SCOPES if caller.can(s))
    return web.json_response(
        {
            "sub": caller.sub,
            "scopes": scopes,
            "admin": caller.admin,
            "max_upload_size": caller.max_upload_size,
        },
        headers={"Cache-Control": "no-store"},
    )
