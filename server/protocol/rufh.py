"""Resumable Uploads for HTTP (draft-ietf-httpbis-resumable-upload), as pure functions.

The draft is tus's successor at the IETF. While it is a draft, every breaking revision bumps
an *interop version*, which clients send in `Upload-Draft-Interop-Version` and servers echo
in their 104s. A client that moves to a newer version loses resumability with a server that
lags (http-extensions#2597), so spigot speaks every version from 3 on, each by its own
rules. What changed, version by version (from each draft's change log):

    interop  drafts   what a server sees change
    3        -01      `Upload-Incomplete: ?1` marks an incomplete upload
    4        -02      `Upload-Complete` (the inverse) replaces it
    5        -03      104s may report progress (`Upload-Offset`)
    6        -04, -05 PATCH must be `application/partial-upload`; problem types;
                      `Upload-Limit` (its lifetime key is `expires`); `Upload-Length`
    7        -06..-08 `expires` is renamed `max-age`; inconsistent-length problem type
    8        -09..-11 OPTIONS must carry Accept-Patch and Upload-Limit
    9        -12..    the server too may complete an upload (spigot does, at its length)

Fields are Structured Fields (RFC 9651), parsed by `http_sfv`. A field whose value is not of
its type is ignored, as the draft says ("other values MUST cause the entire header field to
be ignored"). Nothing here knows about aiohttp or storage.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from http_sfv.dictionary import Dictionary
from http_sfv.item import Item

VERSIONS: Final = range(3, 10)
LATEST: Final = VERSIONS[-1]
PARTIAL_UPLOAD: Final = "application/partial-upload"
PROBLEM_JSON: Final = "application/problem+json"
PROBLEM_BASE: Final = "https://iana.org/assignments/http-problem-types#"
INTERIM: Final = b"HTTP/1.1 104 Upload Resumption Supported\r\n"


@dataclass(frozen=True, slots=True)
class Interop:
    """One interop version, and the rules of the drafts that share it."""

    version: int

    @property
    def completeness_field(self) -> str:
        return "Upload-Incomplete" if self.version == 3 else "Upload-Complete"

    @property
    def reports_progress(self) -> bool:
        return self.version >= 5

    @property
    def partial_upload_type(self) -> bool:
        """PATCH must say Content-Type: application/partial-upload."""
        return self.version >= 6

    @property
    def has_limits(self) -> bool:
        return self.version >= 6

    @property
    def age_key(self) -> str:
        return "expires" if self.version == 6 else "max-age"

    @property
    def has_problem_types(self) -> bool:
        return self.version >= 6


def item(value: str | None) -> Any:
    """A Structured Field Item's bare value, or None for a missing or malformed field."""
    if value is None:
        return None
    parsed = Item()
    try:
        parsed.parse(value.encode("latin-1"))
    except (ValueError, UnicodeEncodeError):
        return None
    return parsed.value


def boolean(value: str | None) -> bool | None:
    got = item(value)
    return got if isinstance(got, bool) else None


def non_negative(value: str | None) -> int | None:
    got = item(value)
    return got if type(got) is int and got >= 0 else None


def interop_of(headers: Mapping[str, str]) -> Interop | None:
    """The version a request speaks, or None: not a draft request, or one of a version
    spigot does not know (which then stays a plain request, with no 104, as the draft
    requires). A request with `Upload-Incomplete` and no version is an interop-3 client."""
    raw = headers.get("Upload-Draft-Interop-Version")
    if raw is None:
        return Interop(3) if boolean(headers.get("Upload-Incomplete")) is not None else None
    version = non_negative(raw)
    return Interop(version) if version is not None and version in VERSIONS else None


def completeness(interop: Interop, headers: Mapping[str, str]) -> bool | None:
    """Whether the request completes the upload; None if it does not say."""
    said = boolean(headers.get(interop.completeness_field))
    if said is None or interop.version != 3:
        return said
    return not said


def completeness_header(interop: Interop, complete: bool) -> dict[str, str]:
    said = complete if interop.version != 3 else not complete
    return {interop.completeness_field: "?1" if said else "?0"}


def limit_header(
    interop: Interop, *, max_size: int | None, max_append_size: int | None, max_age: int | None
) -> dict[str, str]:
    """`Upload-Limit`, in this version's words; nothing before version 6 or when nothing is
    limited."""
    if not interop.has_limits:
        return {}
    limits = Dictionary()
    for key, value in (
        ("max-size", max_size),
        ("max-append-size", max_append_size),
        (interop.age_key, max_age),
    ):
        if value:
            limits[key] = Item(max(0, value))
    return {"Upload-Limit": str(limits)} if len(limits) else {}


def interim(headers: Mapping[str, str]) -> bytes:
    """A `104 Upload Resumption Supported` head. Values come from spigot, never from the
    client, but a CR or LF would still end the head early: they are refused."""
    lines = [INTERIM]
    for name, value in headers.items():
        if any(c in name + value for c in "\r\n"):
            raise ValueError(f"header {name!r} would break the interim response")
        lines.append(f"{name}: {value}\r\n".encode("latin-1"))
    lines.append(b"\r\n")
    return b"".join(lines)


def problem(kind: str, title: str, **members: int) -> dict[str, Any]:
    """An RFC 9457 problem object of one of the draft's problem types."""
    return {"type": PROBLEM_BASE + kind, "title": title, **members}
