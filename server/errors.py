"""Every error a client sees is JSON: {"error": {"code": "...", "message": "..."}}.

Handlers raise ApiError; the middleware also turns aiohttp's own HTTP exceptions (unknown
route, wrong method) and storage errors into that shape, and anything unexpected into a
500 whose body says nothing about the code (the trace goes to the log only).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

from storage import (
    LengthExceeded,
    OffsetMismatch,
    StorageError,
    UploadComplete,
    UploadGone,
    UploadNotFound,
)
from storage.errors import (
    BadParts,
    LockTimeout,
    OverLimit,
    StorageBusy,
    StorageFull,
    StorageReadOnly,
    TempSpaceFull,
)

log = logging.getLogger("spigot")


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: Mapping[str, str] | None = None,
        close: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        self.close = close  # the request body was not read: drop the connection after

    def response(self) -> web.Response:
        resp = error_response(self.status, self.code, self.message, self.headers)
        if self.close:
            resp.force_close()
        return resp


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.json_response(
        {"error": {"code": code, "message": message}}, status=status, headers=headers
    )


def from_storage(exc: StorageError) -> ApiError:
    """The status each storage failure means to a client."""
    match exc:
        case UploadNotFound():
            return ApiError(404, "not_found", "no such file or upload")
        case UploadGone():
            return ApiError(410, "gone", "the upload was terminated or has expired")
        case OffsetMismatch(expected=expected):
            return ApiError(409, "offset_mismatch", str(exc), {"Upload-Offset": str(expected)})
        case LengthExceeded():
            return ApiError(413, "length_exceeded", str(exc))
        case UploadComplete():
            return ApiError(403, "upload_complete", "the upload is complete and takes no more data")
        case LockTimeout():
            return ApiError(423, "locked", "another request is writing this upload; retry")
        case BadParts():
            return ApiError(400, "bad_parts", str(exc))
        case OverLimit():
            return ApiError(413, "upload_too_large", str(exc))
        case StorageBusy():
            return ApiError(
                503,
                "storage_unavailable",
                "the storage backend is failing or busy; retry shortly",
                {"Retry-After": "5"},
            )
        case StorageFull():
            return ApiError(
                507, "insufficient_storage", "the server's storage is full; retry later"
            )
        case StorageReadOnly():
            return ApiError(503, "storage_read_only", "the server's storage takes no writes now")
        case TempSpaceFull():
            return ApiError(507, "temp_space_full", "the server is out of temp space; retry later")
    return ApiError(500, "storage_error", "the storage backend failed")


_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    431: "headers_too_large",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return exc.response()
    except StorageError as exc:
        api = from_storage(exc)
        if isinstance(exc, StorageFull | StorageReadOnly | StorageBusy):  # one line each
            log.warning("%s %s: %s", request.method, request.path, exc)
        elif api.status >= 500:
            log.exception("storage failure on %s %s", request.method, request.path)
        return api.response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "location")}
        return error_response(
            exc.status, _CODES.get(exc.status, "http_error"), exc.reason or "error", headers
        )
    except ConnectionError:
        # The client hung up mid-response (a cancelled download, wrk closing its
        # connections): routine, not a server error. aiohttp drops this reply quietly.
        log.debug("client went away during %s %s", request.method, request.path)
        return error_response(400, "client_disconnected", "the client closed the connection")
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", "internal server error")
