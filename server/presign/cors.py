"""`spigot s3 cors`: the bucket CORS that browsers uploading straight to S3 need.

The most common failure in Uppy's tracker is a bucket that does not expose `ETag`: the
browser then cannot read a part's ETag, and the upload hangs at 100 % (uppy#5516, #5565,
#5594). This writes a rule that exposes it, or checks an existing configuration and says
what is missing. The rules are pure; only `apply` and `check` talk to S3.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

METHODS = ("PUT", "POST", "GET", "HEAD")
EXPOSE = ("ETag", "Location")


def rule(origins: Sequence[str]) -> dict[str, Any]:
    return {
        "AllowedOrigins": list(origins),
        "AllowedMethods": list(METHODS),
        "AllowedHeaders": ["*"],
        "ExposeHeaders": list(EXPOSE),
        "MaxAgeSeconds": 3000,
    }


def _covers(pattern: str, origin: str) -> bool:
    if pattern == "*" or pattern == origin:
        return True
    head, star, tail = pattern.partition("*")
    return bool(star) and origin.startswith(head) and origin.endswith(tail)


def problems(rules: Sequence[dict[str, Any]], origin: str) -> list[str]:
    """What the bucket's CORS rules lack for direct uploads from `origin`; [] if nothing."""
    mine = [r for r in rules if any(_covers(o, origin) for o in r.get("AllowedOrigins", []))]
    if not mine:
        return [f"no CORS rule allows the origin {origin}"]
    found = []
    methods = {m.upper() for r in mine for m in r.get("AllowedMethods", [])}
    for method in METHODS:
        if method not in methods:
            found.append(f"{method} is not an allowed method")
    exposed = {h.lower() for r in mine for h in r.get("ExposeHeaders", [])}
    for header in EXPOSE:
        if header.lower() not in exposed:
            found.append(f"{header} is not exposed (ExposeHeaders)")
    allowed = {h.lower() for r in mine for h in r.get("AllowedHeaders", [])}
    if "*" not in allowed and "content-type" not in allowed:
        found.append("Content-Type is not an allowed header (AllowedHeaders)")
    return found


def current_rules(client: Any, bucket: str) -> list[dict[str, Any]]:
    from botocore.exceptions import ClientError

    try:
        rules: list[dict[str, Any]] = client.get_bucket_cors(Bucket=bucket)["CORSRules"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "NoSuchCORSConfiguration":
            return []
        raise
    return rules


def apply(client: Any, bucket: str, origins: Sequence[str]) -> None:
    """Add spigot's rule for these origins, keeping the bucket's other rules."""
    others = [
        r for r in current_rules(client, bucket) if set(r.get("AllowedOrigins", [])) != set(origins)
    ]
    client.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [*others, rule(origins)]})
