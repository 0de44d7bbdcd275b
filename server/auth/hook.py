"""`--auth hook`: the app that owns the sessions says who a request is.

spigot POSTs `{"method", "path", "upload_id", "authorization", "cookie"}` and the app
answers 200 `{"sub", "scope", "max_upload_size"?}` or 401/403. Answers are kept per
credential for `--auth-hook-cache` in a bounded cache, so a 1,000-PATCH upload costs one
hook call, not a thousand. Anything else (down, slow, a 500, a body that is not the
answer) fails closed with 503: the hook being away never opens the door.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

import aiohttp
from aiohttp import web
from cachetools import TTLCache

from ..errors import ApiError
from ..ops import metrics
from ..ops.middleware import REQUEST_ID
from . import errors
from .principal import Principal, parse_scopes, size_claim

log = logging.getLogger("spigot.auth")

CACHE_ENTRIES = 10_000  # credentials remembered at once; the oldest give way
MAX_ANSWER = 64 << 10  # the hook's JSON answer is small; a larger one is refused unread


class AuthHook:
    def __init__(self, url: str, cache_ttl: float, timeout: float) -> None:
        self.url = url
        self.calls = 0  # hook requests made, for operators and tests
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._cache: TTLCache[str, Principal | ApiError] = TTLCache(CACHE_ENTRIES, cache_ttl)
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=self._timeout)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def identify(self, request: web.Request, authorization: str | None) -> Principal:
        cookie = request.headers.get("Cookie")
        key = hashlib.sha256(f"{authorization}\0{cookie}".encode()).hexdigest()
        answer = self._cache.get(key)
        if answer is None:
            answer = await self._ask(request, authorization, cookie)
            if not (isinstance(answer, ApiError) and answer.status >= 500):
                self._cache[key] = answer  # a hook that failed is asked again next time
        if isinstance(answer, ApiError):
            raise ApiError(answer.status, answer.code, answer.message, answer.headers)
        return answer

    async def _ask(
        self, request: web.Request, authorization: str | None, cookie: str | None
    ) -> Principal | ApiError:
        assert self._session is not None, "AuthHook.start() was not called"
        payload = {
            "method": request.method,
            "path": request.path,
            "upload_id": request.match_info.get("id"),
            "authorization": authorization,
            "cookie": cookie,
        }
        self.calls += 1
        metrics.HOOK_CALLS.labels("auth").inc()
        rid = request.get(REQUEST_ID)
        headers = {"X-Request-ID": rid} if rid else {}
        try:
            async with self._session.post(self.url, json=payload, headers=headers) as resp:
                if resp.status in (401, 403):
                    return refusal(resp.status)
                if resp.status != 200:
                    log.warning("auth hook answered %d", resp.status)
                    metrics.HOOK_FAILURES.labels("auth").inc()
                    return errors.unavailable("the auth hook failed")
                raw = await resp.content.read(MAX_ANSWER + 1)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("auth hook unreachable: %s", type(exc).__name__)
            metrics.HOOK_FAILURES.labels("auth").inc()
            return errors.unavailable("the auth hook did not answer")
        try:
            return principal_from_answer(json.loads(raw) if len(raw) <= MAX_ANSWER else None)
        except (ValueError, ApiError):
            log.warning("auth hook sent an answer that is not {sub, scope}")
            metrics.HOOK_FAILURES.labels("auth").inc()
            return errors.unavailable("the auth hook's answer is malformed")


def refusal(status: int) -> ApiError:
    if status == 401:
        return errors.invalid_token("the application does not know this session")
    return errors.forbidden("the application refused this request")


def principal_from_answer(body: Any) -> Principal:
    if not isinstance(body, dict) or not isinstance(body.get("sub"), str) or not body["sub"]:
        raise ValueError("no sub")
    scope = body.get("scope", "")
    if not isinstance(scope, str | list):
        raise ValueError("scope")
    return Principal(
        sub=body["sub"],
        scopes=parse_scopes(scope),
        max_upload_size=size_claim(body.get("max_upload_size")),
    )
