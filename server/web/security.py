"""The headers the page is served with: pure, so the policy can be read and tested alone.

The page has no inline script or style, so `script-src` and `style-src` are `'self'` and
nothing else. `'wasm-unsafe-eval'` lets hash-wasm compile its SHA-256 (WebAssembly only;
`eval` stays forbidden). `connect-src` names spigot itself: the page uploads over tus to
its own origin. No referrer leaves the page, so a signed link in its URL stays put.
"""

from __future__ import annotations

from collections.abc import Iterable


def content_security_policy(connect: Iterable[str] = ()) -> str:
    directives = {
        "default-src": ["'none'"],
        "script-src": ["'self'", "'wasm-unsafe-eval'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'", *connect],
        "form-action": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
    }
    return "; ".join(f"{name} {' '.join(values)}" for name, values in directives.items())


def page_headers(connect: Iterable[str] = ()) -> dict[str, str]:
    """For the page and every asset: a policy, no sniffing, no framing, no referrer."""
    return {
        "Content-Security-Policy": content_security_policy(connect),
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "Cross-Origin-Opener-Policy": "same-origin",
        # Assets keep their names across releases: revalidate (ETag) rather than guess.
        "Cache-Control": "no-cache",
    }
