"""The ceiling for a Python upload server here: an aiohttp handler on uvloop that reads each
body and drops it. Nothing stored, nothing hashed; whatever spigot costs beyond this is
storage and sha256 (bench/receive.py). Run: python -m bench.discard PORT
"""

from __future__ import annotations

import sys

import uvloop
from aiohttp import web


async def discard(request: web.Request) -> web.Response:
    size = 0
    while chunk := await request.content.readany():
        size += len(chunk)
    return web.json_response({"size": size}, status=201)


def main() -> None:
    app = web.Application(client_max_size=0)
    app.router.add_route("*", "/{tail:.*}", discard)
    web.run_app(
        app, host="127.0.0.1", port=int(sys.argv[1]), print=None, loop=uvloop.new_event_loop()
    )


if __name__ == "__main__":
    main()
