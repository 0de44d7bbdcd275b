"""Direct uploads: browsers and apps send the bytes straight to the bucket with requests
spigot presigns, through the routes `@uppy/aws-s3` calls (Companion's), and the files that
arrive become spigot files (README: Direct uploads).

- `routes`:   the `/s3/` routes, each bound to its upload's key and owner.
- `registry`: a direct upload becomes a spigot file exactly once, with its events.
- `cors`:     `spigot s3 cors`: the bucket CORS the flow needs, written or checked.
"""

from .registry import recognise
from .routes import add_presign_routes

__all__ = ["add_presign_routes", "recognise"]
