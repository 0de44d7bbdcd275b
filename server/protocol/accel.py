"""How long nginx may answer a GET from spigot's earlier answer to the same URL.

Behind nginx (deploy/nginx/spigot.conf), a GET of a file first asks spigot, in an
`auth_request` subrequest, for its X-Accel-Redirect answer, then nginx sends the file and
serves the range itself. Asking costs a trip through spigot per request, which is what
limits many small ranges (bench/RESULTS.md). nginx may keep that answer and reuse it for
the same URL, without asking, for as long as `X-Accel-Expires` says.

It says so only where the answer depends on the URL alone and nothing can withdraw it
sooner:
- a signed download link, which no one can revoke: it stands until its expiry, so the
  answer is reused at most until then;
- a file open to all (--public-downloads).

An answer to a token is never reused: a token's grant is the token's, not the URL's, and
nginx's cache key is the URL. A deleted file ends at once all the same: nginx finds no file
and asks spigot, which answers 404.
"""

from __future__ import annotations

import math

from .numerals import is_digits

NEVER = 0  # X-Accel-Expires: 0 tells nginx not to keep the answer


def reuse_seconds(granted_by: str | None, link_expires: str | None, most: float, now: float) -> int:
    """Whole seconds nginx may reuse a grant for (0: never). `granted_by` is "link" for a
    signed download link (whose verified `expires` is `link_expires`), "public" for a file
    open to all, anything else for a token or an open server."""
    if most <= 0:
        return NEVER
    if granted_by == "public":
        return math.floor(most)
    if granted_by != "link" or link_expires is None or not is_digits(link_expires):
        return NEVER
    return max(NEVER, math.floor(min(most, int(link_expires) - now)))
