"""The answers of access control, in RFC 6750's shapes and the project's JSON errors."""

from __future__ import annotations

from ..errors import ApiError

REALM = 'Bearer realm="spigot"'


def missing() -> ApiError:
    """No credential at all: RFC 6750 section 3.1 says no error code then."""
    return ApiError(
        401, "unauthorized", "this needs Authorization: Bearer <token>", {"WWW-Authenticate": REALM}
    )


def invalid_token(why: str) -> ApiError:
    challenge = f'{REALM}, error="invalid_token", error_description="{why}"'
    return ApiError(401, "invalid_token", why, {"WWW-Authenticate": challenge})


def invalid_request(why: str) -> ApiError:
    challenge = f'{REALM}, error="invalid_request", error_description="{why}"'
    return ApiError(400, "invalid_request", why, {"WWW-Authenticate": challenge})


def insufficient_scope(scopes: tuple[str, ...]) -> ApiError:
    wanted = " ".join(scopes)
    challenge = f'{REALM}, error="insufficient_scope", scope="{wanted}"'
    return ApiError(
        403,
        "insufficient_scope",
        f"this needs the scope {' or '.join(scopes)}",
        {"WWW-Authenticate": challenge},
    )


def forbidden(why: str) -> ApiError:
    return ApiError(403, "forbidden", why)


def bad_link(why: str) -> ApiError:
    return ApiError(403, "bad_signature", why)


def unavailable(why: str) -> ApiError:
    """The thing that decides (the auth hook, a JWKS endpoint) did not answer: closed, not
    open, and worth a retry."""
    return ApiError(503, "auth_unavailable", why, {"Retry-After": "5"})
