"""Resumable Uploads for HTTP, the IETF draft that succeeds tus, on tus's URLs and storage.

`common` decides which requests are draft requests; `creation`, `append` and `resource`
answer them, `transfer` takes their bodies and completes uploads; `interim` writes the
104s; `problems` the draft's problem+json errors. `session` is what tus shares with it
(the lock, take-over, a body within its caps). The grammar, and what each interop version
changes, is `server.protocol.rufh`.
"""

from .append import draft_patch
from .common import is_draft, is_draft_creation
from .creation import draft_create
from .resource import draft_delete, draft_head

__all__ = [
    "draft_create",
    "draft_delete",
    "draft_head",
    "draft_patch",
    "is_draft",
    "is_draft_creation",
]
