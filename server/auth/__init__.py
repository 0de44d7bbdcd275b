"""Access control: who may upload, read, list and delete (README: Access control).

- `principal`: who is asking, and what they may do.
- `guard`:     each route's `Need`, and the check every guarded route runs first.
- `tokens`:    `--auth jwt`, verified with PyJWT.
- `hook`:      `--auth hook`, the application that owns the sessions decides.
- `exposure`:  `--auth none` only on loopback (Redis's protected mode).
- `errors`:    RFC 6750's answers, in the project's JSON.
"""

from .guard import (
    AUTHENTICATOR,
    Need,
    authenticate,
    authenticator_lifecycle,
    check_upload_type,
    guarded,
    owned,
    principal_of,
    upload_cap,
)
from .principal import OPEN, SCOPES, Principal

__all__ = [
    "AUTHENTICATOR",
    "OPEN",
    "SCOPES",
    "Need",
    "Principal",
    "authenticate",
    "authenticator_lifecycle",
    "check_upload_type",
    "guarded",
    "owned",
    "principal_of",
    "upload_cap",
]
