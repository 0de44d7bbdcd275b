"""Signed links to spigot's own files: what a query string grants, decided without I/O.

Three kinds, each signed with its kind in the message so that one can never pass for
another:

- `download`: `/files/{id}?expires=…&sig=…` reads one finished file (ranges and all).
- `resume`:   the same shape, on the `Location` of a tus upload created through an upload
  link: HEAD, PATCH and DELETE of that one upload, so tus clients need no token.
- `upload`:   `/files/?expires=…&max_size=…&owner=…&type=…&sig=…` creates uploads with
  those terms (S3's POST policy, for spigot itself). Every term is optional but expiry.
- `post`:     `/files/?upload={id}&expires=…&sig=…`: the one form POST that fills a direct
  upload already made (its owner, type and limit are bound to it), on local disk.
- `part`:     `/s3/local/{id}/{n}?expires=…&sig=…`: PUT of part n of a direct multipart
  upload on local disk; the subject is `{id}/{n}`.

The message is `spigot/1`, the kind, the expiry and the kind's fields, one per line. Fields
that could hold a newline are refused both when signing and when verifying, so no two sets
of terms ever share a message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import unquote_plus, urlencode

from . import signing
from .media import MEDIA_PATTERN
from .numerals import is_digits

DOWNLOAD = "download"
RESUME = "resume"
UPLOAD = "upload"
POST = "post"
PART = "part"
KINDS = (DOWNLOAD, RESUME, UPLOAD, POST, PART)

SIGNED_PARAMS = ("expires", "max_size", "owner", "type", "sig")
_SIG = re.compile(r"[0-9a-fA-F]{64}")
_SIZE = re.compile(r"[0-9]{1,19}")
MAX_OWNER = 256


class LinkRefused(ValueError):
    """The query carries a signature that does not grant this request; the message says
    why, for the 403."""


@dataclass(frozen=True, slots=True)
class UploadTerms:
    max_size: int | None = None  # bytes; None: the server's own caps alone
    owner: str | None = None  # recorded as the owner of every upload made through it
    type: str | None = None  # a media type or pattern such as video/*

    def problem(self) -> str | None:
        """Why these terms cannot be signed or honoured, or None."""
        if self.owner is not None and not (
            0 < len(self.owner) <= MAX_OWNER and self.owner.isprintable()
        ):
            return f"the owner must be 1-{MAX_OWNER} printable characters"
        if self.type is not None and not MEDIA_PATTERN.fullmatch(self.type):
            return f"{self.type!r} is not a media type or pattern like video/*"
        if self.max_size is not None and not 0 < self.max_size < 10**19:
            return "the size must be at least one byte"
        return None


@dataclass(frozen=True, slots=True)
class Grant:
    """What a valid link allows."""

    kind: str
    expires: int
    upload_id: str | None = None  # download and resume links name one upload
    terms: UploadTerms | None = None  # upload links carry terms


def _message(kind: str, expires: int, subject: str | UploadTerms) -> str:
    if isinstance(subject, UploadTerms):
        fields = [
            "" if subject.max_size is None else str(subject.max_size),
            subject.owner or "",
            subject.type or "",
        ]
    else:
        fields = [subject]
    return "\n".join(["spigot/1", kind, str(expires), *fields])


def file_query(key: str, kind: str, upload_id: str, expires: int) -> str:
    """`expires=…&sig=…` for a link to one upload (or, for `part`, `{id}/{n}`)."""
    assert kind != UPLOAD
    sig = signing.mac(key, _message(kind, expires, upload_id))
    return urlencode({"expires": expires, "sig": sig})


def upload_query(key: str, terms: UploadTerms, expires: int) -> str:
    """The query of an upload link with these terms."""
    problem = terms.problem()
    if problem is not None:
        raise ValueError(problem)
    params: dict[str, str | int] = {"expires": expires}
    if terms.max_size is not None:
        params["max_size"] = terms.max_size
    if terms.owner is not None:
        params["owner"] = terms.owner
    if terms.type is not None:
        params["type"] = terms.type
    params["sig"] = signing.mac(key, _message(UPLOAD, expires, terms))
    return urlencode(params)


def is_signed(query: Mapping[str, str]) -> bool:
    return "sig" in query


def _terms(query: Mapping[str, str]) -> UploadTerms:
    size = query.get("max_size")
    if size is not None and not _SIZE.fullmatch(size):
        raise LinkRefused("the link's max_size is malformed")
    terms = UploadTerms(
        max_size=int(size) if size is not None else None,
        owner=query.get("owner"),
        type=query.get("type"),
    )
    problem = terms.problem()
    if problem is not None:
        raise LinkRefused(f"the link is malformed: {problem}")
    return terms


def verify(
    keys: Sequence[str],
    kinds: Sequence[str],
    query: Mapping[str, str],
    upload_id: str | None,
    now: float,
) -> Grant:
    """The grant of the first of `kinds` whose signature the query carries; LinkRefused
    when none does, or when it has expired. `upload_id` is the id in the path, for
    download and resume links."""
    sig = query.get("sig", "")
    expires = query.get("expires", "")
    if not _SIG.fullmatch(sig):
        raise LinkRefused("the link's signature is malformed")
    if not is_digits(expires) or len(expires) > signing.MAX_EXPIRES_DIGITS:
        raise LinkRefused("the link's expiry is malformed")
    when = int(expires)
    for kind in kinds:
        subject: str | UploadTerms
        if kind == UPLOAD:
            subject = _terms(query)
        elif upload_id is not None:
            subject = upload_id
        else:
            continue
        if signing.matches(keys, _message(kind, when, subject), sig):
            if when < now:
                raise LinkRefused("the link has expired")
            terms = subject if isinstance(subject, UploadTerms) else None
            named = subject if isinstance(subject, str) else None
            return Grant(kind, when, upload_id=named, terms=terms)
    raise LinkRefused("the link's signature does not match")


def redact(query: str) -> str:
    """A query string for a log line: the value of every parameter that grants access
    (signatures, bearer tokens) replaced, everything else left as it was."""
    if not query:
        return query
    out = []
    for pair in query.split("&"):
        name, eq, _ = pair.partition("=")
        secret = unquote_plus(name).lower() in SECRET_PARAMS
        out.append(f"{name}=REDACTED" if eq and secret else pair)
    return "&".join(out)


SECRET_PARAMS = frozenset({"sig", "access_token", "token", "signature", "x-amz-signature"})
