"""Who is asking, and what they may do: the one value every route's checks read."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from storage import UploadInfo

from . import errors

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


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    """The principal a verified token's claims name (`--auth jwt`)."""
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise errors.invalid_token("the token's sub must be a string")
    return Principal(
        sub=sub,
        scopes=parse_scopes(claims.get("scope", claims.get("scp"))),
        max_upload_size=size_claim(claims.get("max_upload_size")),
    )


def size_claim(value: object) -> int | None:
    """A `max_upload_size` claim, from a token or an auth hook's answer."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise errors.invalid_token("max_upload_size must be a whole number of bytes")
    return value
