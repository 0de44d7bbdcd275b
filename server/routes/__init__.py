"""URL map. Each module under routes/ is one HTTP concern; this file only wires them."""

from aiohttp import web

from .downloads import get_file
from .files import delete_file, list_files
from .health import healthz
from .uploads import expect_continue, post_file, put_file


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/healthz", healthz)
    for collection in ("/files", "/files/"):
        r.add_post(collection, post_file, expect_handler=expect_continue)
        r.add_put(collection, put_file, expect_handler=expect_continue)  # curl -T - URL/files/
        r.add_get(collection, list_files)
    r.add_put("/files/{name}", put_file, expect_handler=expect_continue)
    r.add_get("/files/{id}", get_file)  # add_get also answers HEAD
    r.add_delete("/files/{id}", delete_file)
