"""The `spigot` command (also `python -m server`)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import sys
from typing import NoReturn

from aiohttp import web

from .app import create_app
from .settings import SettingError, Settings
from .storage_factory import open_store


class _OneLineParser(argparse.ArgumentParser):
    """Bad usage gets one line and exit status 2, like every other bad value here."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(prog="spigot", description="Streaming server for very large files.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_OneLineParser)
    serve = commands.add_parser("serve", help="run the HTTP server")
    for opt in Settings.options():
        serve.add_argument(
            "--" + opt.name.replace("_", "-"),
            dest=opt.name,
            default=None,
            metavar=opt.metadata["metavar"] or None,
            help=f"{opt.metadata['help']} [env SPIGOT_{opt.name.upper()}]",
        )
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings.resolve(vars(args), os.environ)
    except SettingError as exc:
        parser.exit(2, f"spigot: error: {exc}\n")
    if args.command == "serve":
        logging.basicConfig(
            level=settings.log_level_number, format="%(asctime)s %(levelname)s %(name)s %(message)s"
        )
        try:
            asyncio.run(serve(settings))
        except KeyboardInterrupt:
            pass
        except OSError as exc:  # port in use, storage not writable, ...
            parser.exit(1, f"spigot: error: {exc}\n")


async def serve(settings: Settings) -> None:
    """Run until SIGINT/SIGTERM. Binds the socket itself so `--port 0` can report its port."""
    store = open_store(settings)
    runner = web.AppRunner(create_app(settings, store), handle_signals=False)
    await runner.setup()
    sock = socket.create_server((settings.host, settings.port), reuse_port=False)
    site = web.SockSite(runner, sock)
    await site.start()
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"spigot serving http://{shown}:{port} storage={store.describe()}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
