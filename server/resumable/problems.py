"""The draft's errors as RFC 9457 problem details, still in spigot's error shape.

A problem object may carry extension members, so each body is both: the draft's `type`,
`title` and members (`expected-offset`, `provided-offset`) for draft clients, and spigot's
own `{"error": {"code", "message"}}` for everything else that reads our errors.
"""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from ..errors import ApiError
from ..protocol import rufh


class Problem(ApiError):
    def __init__(
        self,
        status: int,
        code: str,
        kind: str,
        title: str,
        headers: Mapping[str, str] | None = None,
        **members: int,
    ) -> None:
        super().__init__(status, code, title, headers)
        self.kind = kind
        self.members = members

    def response(self) -> web.Response:
        body = {
            **rufh.problem(self.kind, self.message, **self.members),
            "error": {"code": self.code, "message": self.message},
        }
        resp = web.json_response(
            body, status=self.status, headers=self.headers, content_type=rufh.PROBLEM_JSON
        )
        if self.close:
            resp.force_close()
        return resp


def mismatching_offset(expected: int, provided: int, headers: Mapping[str, str]) -> Problem:
    return Problem(
        409,
        "offset_mismatch",
        "mismatching-upload-offset",
        f"the upload is at offset {expected}, not {provided}",
        {**headers, "Upload-Offset": str(expected)},
        **{"expected-offset": expected, "provided-offset": provided},
    )


def inconsistent_length(message: str, headers: Mapping[str, str]) -> Problem:
    return Problem(400, "inconsistent_length", "inconsistent-upload-length", message, headers)


def completed(headers: Mapping[str, str]) -> Problem:
    return Problem(
        400, "upload_complete", "completed-upload", "the upload is already complete", headers
    )
