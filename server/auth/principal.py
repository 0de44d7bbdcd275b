"""Who is asking, and what they may do: the one value every route's checks read."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from storage import UploadInfo

SCOPES = frozenset({"upload", "read", "delete", "import", "sign", "admin"})


def parse_scopes(value: object) -> frozenset[str]:
    """A space-separated `scope` claim (RFC 8693), or a list of names (Okta's `scp`).
    Names spigot does not know are ignored, not errors: tokens serve many audiences."""
    names: Iterable[object]
    if isinstance(value, str):
        names = value.split()
    elif isinstance(value, list):
        names = value
    else:
        names = ()
    return frozenset(n for n in names if isinstance(n, str) and n in SCOPES)


@dataclass(frozen=True, slots=True)
class Principal:
    sub: str | None  # the owner recorded on what they upload
    scopes: frozenset[str]
    max_upload_size: int | None = None  # below the server's own caps
    upload_type: str | None = None  # an upload link's type pattern, e.g. video/*
    only_upload: str | None = None  # a link to one upload grants nothing else
    open: bool = False  # --auth none: everything, every owner
    via_link: bool = False  # a signed upload link, whose max_size is the body's cap
    link_kind: str | None = None  # the kind of signed link this principal came from
    public: bool = False  # --public-downloads: anyone, for this one file

    def can(self, scope: str) -> bool:
        return self.open or "admin" in self.scopes or scope in self.scopes

    @property
    def admin(self) -> bool:
        return self.only_upload is None and (self.open or "admin" in self.scopes)

    def owns(self, info: UploadInfo) -> bool:
        """Whether this upload is theirs to see, resume or remove. Callers answer 404
        otherwise, exactly as for an unknown id, so ids tell nothing about others' files."""
        if self.only_upload is not None:
            return info.id == self.only_upload
        return self.admin or (self.sub is not None and info.owner == self.sub)


OPEN = Principal(sub=None, scopes=SCOPES, open=True)
