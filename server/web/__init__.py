"""The web page at `/`: an upload and file-list UI built on spigot-client (`client_js/`).

The page and its assets are built from `client_js/web/` by esbuild and committed here, in
`static/`, so `make serve` needs no Node; `make test` rebuilds them and fails if the
committed copy differs. The page runs under a strict Content-Security-Policy (no inline
script or style), see `security.py`.
"""

from .routes import add_web_routes

__all__ = ["add_web_routes"]
